"""Pure curation decisions, with no I/O and no models: utterance spans, transcript filters, speaker turns."""
