"""What the report plots, accumulated one sample or reject at a time: a few numbers per segment, never the records
themselves, so a run of any size is reported from its completion records in bounded memory."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field

from curation.report.examples import ExamplePicker
from schemas.quality import QUALITY_DIMENSIONS
from schemas.sample import Sample

QUALITY_GROUPS = ("kept", "rejected at quality", "rejected later")


@dataclass
class RunStats:
    durations: array = field(default_factory=lambda: array("d"))  # kept segments' seconds
    too_short: array = field(default_factory=lambda: array("d"))  # seconds of segments dropped for length
    bandwidths: array = field(default_factory=lambda: array("d"))  # kept segments' measured band, Hz
    narrow_band: array = field(default_factory=lambda: array("d"))  # band of segments rejected as narrow, Hz
    inputs_too_short: int = 0  # whole inputs dropped for length at decode
    quality: dict[str, dict[str, array]] = field(default_factory=dict)  # dim -> group -> scores
    tags: Counter = field(default_factory=Counter)  # inline tags of kept transcripts
    speakers: Counter = field(default_factory=Counter)  # speakers per kept transcript -> samples
    untranscribed: int = 0
    rejects: Counter = field(default_factory=Counter)  # (stage, reason) -> rejects
    source_speakers: Counter = field(default_factory=Counter)  # speakers found in a source -> sources
    languages: Counter = field(default_factory=Counter)  # (language, how decided) -> kept samples
    examples: ExamplePicker = field(default_factory=ExamplePicker)  # a few per quality band and reject reason

    def _scores(self, group: str, sample: Sample) -> None:
        if sample.quality is None:
            return
        for dim, value in sample.quality.dimensions().items():
            if math.isfinite(value):
                self.quality.setdefault(dim, {g: array("d") for g in QUALITY_GROUPS})[group].append(value)

    def add_kept(self, sample: Sample) -> None:
        self.durations.append(sample.audio.duration_s)
        if sample.audio.bandwidth_hz is not None:
            self.bandwidths.append(sample.audio.bandwidth_hz)
        self.languages[sample.language or "unknown", sample.language_source] += 1
        self._scores("kept", sample)
        if sample.transcript is None:
            self.untranscribed += 1
        else:
            self.tags.update(sample.transcript.tags())
            self.speakers[len(sample.transcript.speakers())] += 1

    def add_reject(self, stage: str, reason: str, sample: Sample | None) -> None:
        self.rejects[stage, reason] += 1
        if reason == "segment_too_short" and sample is not None:
            self.too_short.append(sample.audio.duration_s)
        elif reason == "narrow_band" and sample is not None and sample.audio.bandwidth_hz is not None:
            self.narrow_band.append(sample.audio.bandwidth_hz)
        elif reason == "too_short":
            self.inputs_too_short += 1
        if sample is not None:
            self._scores("rejected at quality" if stage == "quality" else "rejected later", sample)

    def add_sources(self, samples: list[dict]) -> None:
        """Speakers per source, from a unit's manifest rows (a source's samples are all in one unit)."""
        found: dict[str, int] = {}
        for m in samples:
            if m.get("source_speakers") is not None:
                found[m["source_uri"]] = max(found.get(m["source_uri"], 0), m["source_speakers"])
        self.source_speakers.update(found.values())

    def add_unit(self, samples: list[dict], rejects: list[dict]) -> None:
        """A unit's manifest rows and reject dicts, as its completion record holds them."""
        for m in samples:
            sample = Sample.model_validate_json(m["sample_json"])
            self.add_kept(sample)
            self.examples.add_kept(m, sample)
        for j in rejects:
            sample = Sample.model_validate_json(j["sample_json"]) if j.get("sample_json") else None
            self.add_reject(j["stage"], j["reason"], sample)
            self.examples.add_reject(j, sample)
        self.add_sources(samples)

    def dimensions(self, thresholds: dict[str, float]) -> list[str]:
        """The quality dimensions to plot: scored in this run or thresholded, in the canonical order."""
        return [d for d in QUALITY_DIMENSIONS if d in self.quality or d in thresholds]
