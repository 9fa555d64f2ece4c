"""The one way tests build curation rows (curation.row.Row), as the stages would have left them.

`piece_row`: a decoded input (or piece of one), as decode hands it to the model stages.
`segment_row`: a segment with its Sample record, as segmentation hands it to quality and transcription.
Both hold 16-bit PCM of `wave` (full band) and its 16 kHz analysis copy; their keys and source URIs follow from
`index` unless given.
"""

from __future__ import annotations

import numpy as np

from curation.io.keys import segment_key, source_key
from curation.row import Row, SourceInfo
from schemas.sample import AudioFacts, Sample, SourceRef

ANALYSIS_RATE = 16000  # decode.sample_rate: what the analysis models read


def _uri(index: int, uri: str | None) -> str:
    return uri if uri is not None else f"/in/{index}.wav"


def piece_row(
    wave: np.ndarray,
    rate: int,
    index: int = 0,
    *,
    uri: str | None = None,
    unit: int = 0,
    piece: int = 0,
    last_piece: bool = True,
    offset_s: float = 0.0,
    facts: AudioFacts | None = None,
    text: str | None = None,
    speaker: str | None = None,
    language: str | None = None,
) -> Row:
    """Input `index` decoded to `wave` at `rate`; `facts` are the source file's (default: `wave`'s own)."""
    uri = _uri(index, uri)
    facts = facts or AudioFacts(sample_rate=rate, channels=1, duration_s=len(wave) / rate)
    source = SourceInfo(text=text, speaker=speaker, language=language, audio=facts, offset_s=offset_s)
    row = Row(
        key=source_key(uri),
        source_uri=uri,
        input_index=index,
        unit=unit,
        piece=piece,
        last_piece=last_piece,
        source=source,
    )
    row.set_waveform(wave, rate, ANALYSIS_RATE)
    return row


def segment_row(
    wave: np.ndarray,
    rate: int,
    index: int = 0,
    *,
    uri: str | None = None,
    unit: int = 0,
    segment: int = 0,
    start_s: float = 0.0,
    file_rows: int = 1,
    piece: int = 0,
    last_piece: bool = True,
    facts: AudioFacts | None = None,
    text: str | None = None,
    speaker: str | None = None,
    language: str | None = None,
) -> Row:
    """Segment `segment` of input `index`: `wave` at `rate`, starting `start_s` into the source, one of `file_rows`
    rows its piece became; `facts` are the source file's (default: `wave`'s own)."""
    uri = _uri(index, uri)
    key = segment_key(uri, segment)
    duration = len(wave) / rate
    facts = facts or AudioFacts(sample_rate=rate, channels=1, duration_s=duration)
    sample = Sample(
        key=key,
        source=SourceRef(
            uri=uri,
            start_s=start_s,
            end_s=start_s + duration,
            audio=facts,
            text=text,
            speaker=speaker,
            language=language,
        ),
        audio=AudioFacts(sample_rate=rate, channels=1, duration_s=duration, format="FLAC"),
    )
    source = SourceInfo(text=text, speaker=speaker, language=language, audio=facts)
    row = Row(
        key=key,
        source_uri=uri,
        input_index=index,
        unit=unit,
        piece=piece,
        last_piece=last_piece,
        file_rows=file_rows,
        source=source,
        sample=sample,
    )
    row.set_waveform(wave, rate, ANALYSIS_RATE)
    return row
