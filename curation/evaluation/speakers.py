"""Measuring who-speaks-when over whole sources: reference turns from RTTM files, conversations built from clips of
different speakers (optionally through a telephone channel), and a source's hypothesis turns from its segments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import signal as sps

from curation.policy.diarization import SpeakerTurn, join_utterances
from models.signal import resample

TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)


def read_rttm(path: str | Path, uri: str) -> list[SpeakerTurn]:
    """The SPEAKER lines of `uri`, speakers numbered by first appearance in the file."""
    names: dict[str, int] = {}
    turns = []
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER" and f[1] == uri:
            turns.append(SpeakerTurn(names.setdefault(f[7], len(names)), float(f[3]), float(f[3]) + float(f[4])))
    return turns


def telephone(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """`x` as a narrow-band phone line delivers it: 300-3400 Hz, through 8 kHz, back at `sample_rate`."""
    y = resample(np.asarray(x, dtype=np.float32), sample_rate, TELEPHONE_RATE)
    sos = sps.butter(6, TELEPHONE_BAND_HZ, btype="bandpass", fs=TELEPHONE_RATE, output="sos")
    y = sps.sosfiltfilt(sos, y).astype(np.float32)
    return resample(y, TELEPHONE_RATE, sample_rate)


def conversation(
    speakers: Sequence[Sequence[np.ndarray]], sample_rate: int, pause_s: float = 0.4
) -> tuple[np.ndarray, list[SpeakerTurn]]:
    """The speakers take turns round-robin (speaker i's k-th clip in round k) until all clips are used: the audio
    and its reference turns."""
    clips = [
        (i, clips[k]) for k in range(max(map(len, speakers))) for i, clips in enumerate(speakers) if k < len(clips)
    ]
    return join_utterances(clips, sample_rate, pause_s)


def source_hypothesis(starts: Sequence[float], turns: Sequence[Sequence[SpeakerTurn]]) -> list[SpeakerTurn]:
    """A source's speaker turns in source time, from its segments' start times and turns (segment time)."""
    return [SpeakerTurn(t.speaker, t0 + t.start_s, t0 + t.end_s) for t0, seg in zip(starts, turns) for t in seg]
