"""Model wrappers: plain Python objects built from a ModelSpec. Import schemas only; no ray, no dataset I/O."""
