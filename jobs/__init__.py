"""Entrypoints: the `s2` CLI and `python -m jobs.<name>` for `ray job submit`."""
