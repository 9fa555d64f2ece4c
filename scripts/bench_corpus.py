"""The curation benchmark's input: a reproducible set of synthetic "recordings" built from the clips in the
repository only (tests/data, examples/audio), so a fresh clone can build it.

Each file is a fixed-seed sequence of speech utterances (clips speed-perturbed by 0.9-1.1x and re-levelled,
separated by pauses of 0.2-2.5 s and now and then a longer 3-6 s one), in one of four kinds:

  clean        speech over a -70 dBFS noise floor
  music        speech over music (the two music clips), 0-15 dB SNR
  noise        speech over household/street noise, 5-20 dB SNR
  background   music or noise only: no speech at all (curation must reject it)

Files are 30-120 s (the last one shorter if the hours run out), written at 16/22.05/44.1/48 kHz as FLAC,
WAV or Ogg Vorbis, so decoding meets several formats and rates. The set is cached in a folder with a
`recipe.json`; it is rebuilt when the folder lacks a file or the recipe (this module's version, the
parameters, the source clips' bytes) has changed.

`long_recipe` describes one long file (e.g. two hours) made of 5-minute sections of every kind; it is
rendered and written block by block, so building it needs little memory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parent.parent
RECIPE_VERSION = 1
RATE = 16000  # rendering rate; files are resampled to their own rate when written
BLOCK_S = 30.0  # rendering block

SPEECH_DIRS = ("tests/data/speech", "tests/data/multispeaker", "examples/audio")
MUSIC = ("tests/data/noise/music_hungarian_dance_20s.ogg", "tests/data/noise/music_vibe_ace_20s.ogg")
NOISE = ("tests/data/noise/dishes_20s.flac", "tests/data/noise/deepfilternet__noise_freesound_573577.wav")
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3")
# speech_over_music is already a mixture: it is a source of its own, not a clean utterance
EXCLUDED = ("speech_over_music.flac",)

KINDS = (("clean", 0.55), ("music", 0.25), ("noise", 0.10), ("background", 0.10))
FORMATS = ((16000, "FLAC"), (16000, "FLAC"), (16000, "WAV"), (44100, "FLAC"), (48000, "WAV"), (22050, "OGG"))
EXT = {"FLAC": "flac", "WAV": "wav", "OGG": "ogg"}
SUBTYPE = {"FLAC": "PCM_16", "WAV": "PCM_16", "OGG": "VORBIS"}
SNR_DB = {"music": (0.0, 15.0), "noise": (5.0, 20.0)}
SPEECH_DBFS = -23.0
FLOOR_DBFS = -70.0


@dataclass(frozen=True)
class Section:
    kind: str
    seconds: float
    snr_db: float | None  # speech over background; None for clean and background-only


@dataclass(frozen=True)
class FileRecipe:
    name: str
    seed: int
    sample_rate: int
    format: str
    sections: tuple[Section, ...]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.sections)


def source_clips() -> dict[str, list[Path]]:
    """The clips the set is made of, deduplicated by file name (examples/ repeats some test clips)."""
    speech: dict[str, Path] = {}
    for d in SPEECH_DIRS:
        for p in sorted((ROOT / d).iterdir()):
            if p.suffix in AUDIO_EXT and p.name not in EXCLUDED:
                speech.setdefault(p.name, p)
    return {"speech": list(speech.values()), "music": [ROOT / m for m in MUSIC], "noise": [ROOT / n for n in NOISE]}


def _pick(rng: np.random.Generator, table: tuple) -> object:
    return table[rng.choice(len(table), p=[w for _, w in table])][0]


def plan_files(hours: float, seed: int = 0) -> list[FileRecipe]:
    """The files of the set: one section each, 30-120 s, until `hours` of audio."""
    rng = np.random.default_rng(seed)
    total, out = hours * 3600.0, []
    while total - sum(f.seconds for f in out) >= 5.0:
        seconds = round(min(float(rng.uniform(30.0, 120.0)), total - sum(f.seconds for f in out)), 2)
        kind = str(_pick(rng, KINDS))
        snr = round(float(rng.uniform(*SNR_DB[kind])), 1) if kind in SNR_DB else None
        rate, fmt = FORMATS[rng.integers(len(FORMATS))]
        n = len(out)
        out.append(
            FileRecipe(f"bench_{n:03d}_{kind}.{EXT[fmt]}", seed * 100003 + n, rate, fmt, (Section(kind, seconds, snr),))
        )
    return out


def long_recipe(hours: float, seed: int = 0, section_s: float = 300.0) -> FileRecipe:
    """One long FLAC file at 16 kHz of `section_s` sections cycling through the kinds (mostly speech)."""
    rng = np.random.default_rng(seed)
    cycle = ("clean", "music", "clean", "noise", "clean", "background")
    sections, left, k = [], hours * 3600.0, 0
    while left > 0:
        kind, seconds = cycle[k % len(cycle)], min(section_s, left)
        snr = round(float(rng.uniform(*SNR_DB[kind])), 1) if kind in SNR_DB else None
        sections.append(Section(kind, seconds, snr))
        left -= seconds
        k += 1
    return FileRecipe(f"long_{hours:g}h.flac", seed, 16000, "FLAC", tuple(sections))


def _load(path: Path) -> np.ndarray:
    """Mono float32 at RATE, peak-safe."""
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, sr, RATE).astype(np.float32) if sr != RATE else x


def _rms_db(x: np.ndarray) -> float:
    return 10.0 * np.log10(float(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def _gain(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * np.float32(10.0 ** ((dbfs - _rms_db(x)) / 20.0))


class _Renderer:
    """Renders the sections of one file as blocks of RATE audio; all randomness comes from the file's seed."""

    def __init__(self, recipe: FileRecipe, clips: dict[str, list[np.ndarray]]):
        self.recipe, self.clips = recipe, clips
        self.rng = np.random.default_rng(recipe.seed)

    def _speech(self, n: int) -> np.ndarray:
        """n samples of utterances and pauses; an utterance never runs past the end (it is cut short)."""
        out = np.zeros(n, np.float32)
        pos = int(self.rng.uniform(0.2, 1.0) * RATE)
        while pos < n:
            clip = self.clips["speech"][self.rng.integers(len(self.clips["speech"]))]
            speed = float(self.rng.uniform(0.9, 1.1))
            # resampling by `speed` and playing at RATE changes tempo and pitch alike: a new voice, cheaply
            utt = soxr.resample(clip, RATE, int(RATE / speed)) if abs(speed - 1.0) > 1e-3 else clip
            utt = _gain(utt, SPEECH_DBFS + float(self.rng.uniform(-6.0, 4.0)))
            take = min(len(utt), n - pos)
            out[pos : pos + take] = utt[:take]
            pause = self.rng.uniform(3.0, 6.0) if self.rng.random() < 0.1 else self.rng.uniform(0.2, 2.5)
            pos += take + int(pause * RATE)
        return out

    def _background(self, kind: str, n: int) -> np.ndarray:
        pool = (
            self.clips["music"]
            if kind == "music"
            else self.clips["noise"]
            if kind == "noise"
            else self.clips["music"] + self.clips["noise"]
        )
        src = pool[self.rng.integers(len(pool))]
        start = int(self.rng.integers(len(src)))
        return np.resize(np.roll(src, -start), n)  # looped from a random point

    def blocks(self) -> Iterator[np.ndarray]:
        for sec in self.recipe.sections:
            n_sec = int(round(sec.seconds * RATE))
            for a in range(0, n_sec, int(BLOCK_S * RATE)):
                n = min(int(BLOCK_S * RATE), n_sec - a)
                floor = self.rng.standard_normal(n).astype(np.float32) * np.float32(10.0 ** (FLOOR_DBFS / 20.0))
                if sec.kind == "background":
                    yield (
                        _gain(
                            self._background(self.rng.choice(["music", "noise"]), n),
                            SPEECH_DBFS + float(self.rng.uniform(-6.0, 3.0)),
                        )
                        + floor
                    )
                    continue
                speech = self._speech(n)
                if sec.kind == "clean":
                    yield speech + floor
                    continue
                active = speech[np.abs(speech) > 1e-3]
                level = _rms_db(active) if active.size else SPEECH_DBFS
                yield speech + _gain(self._background(sec.kind, n), level - sec.snr_db) + floor


def write_file(recipe: FileRecipe, folder: Path, clips: dict[str, list[np.ndarray]]) -> Path:
    """Render and write one file block by block, resampled in a stream to its rate (a stray peak is clipped)."""
    path = folder / recipe.name
    stream = None if recipe.sample_rate == RATE else soxr.ResampleStream(RATE, recipe.sample_rate, 1, dtype="float32")
    with sf.SoundFile(str(path), "w", recipe.sample_rate, 1, SUBTYPE[recipe.format], format=recipe.format) as f:
        blocks = _Renderer(recipe, clips).blocks()
        pending = next(blocks, None)
        while pending is not None:
            nxt = next(blocks, None)
            y = pending if stream is None else stream.resample_chunk(pending, last=nxt is None)
            f.write(np.clip(y, -0.99, 0.99))
            pending = nxt
    return path


def recipe_hash(files: list[FileRecipe], sources: dict[str, list[Path]]) -> str:
    h = hashlib.sha256(
        json.dumps({"version": RECIPE_VERSION, "files": [asdict(f) for f in files]}, sort_keys=True).encode()
    )
    for p in sorted(q for group in sources.values() for q in group):
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def build_set(folder: str | Path, files: list[FileRecipe]) -> dict:
    """Make `folder` hold exactly `files` (reusing a previous build of the same recipe). Returns the recipe record."""
    folder = Path(folder)
    sources = source_clips()
    digest = recipe_hash(files, sources)
    record_path = folder / "recipe.json"
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record.get("hash") == digest and all((folder / f.name).is_file() for f in files):
            return record | {"reused": True}
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    clips = {k: [_load(p) for p in v] for k, v in sources.items()}
    for f in files:
        write_file(f, folder, clips)
    record = {
        "hash": digest,
        "files": len(files),
        "seconds": round(sum(f.seconds for f in files), 2),
        "kinds": {k: sum(1 for f in files if f.sections[0].kind == k) for k, _ in KINDS}
        if len(files) > 1
        else sorted({s.kind for s in files[0].sections}),
        "sources": sorted(str(p.relative_to(ROOT)) for group in sources.values() for p in group),
    }
    record_path.write_text(json.dumps(record, indent=1))
    return record | {"reused": False}
