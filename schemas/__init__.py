"""Data contracts (pydantic v2). Imports nothing of ours, nor torch or ray."""
