"""The curation stages: the contract (base.py), one module per stage, and which stages a config runs."""
