"""Measuring curation: labelled degradations of clean speech, speaker-attribution accuracy."""
