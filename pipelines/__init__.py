"""Assembly on Ray: the curation graph (later the training loader, trainer and GRPO loop)."""
