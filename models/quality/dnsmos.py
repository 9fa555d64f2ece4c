"""DNSMOS (Microsoft DNS Challenge) P.835 + P.808 quality scores from the ONNX models shipped in the `speechmos` wheel.

Only the model files come from the wheel; windowing, the P.808 log-mel features and the P.835 calibration are
ours, written to reproduce the reference `dnsmos_local.py` so the numbers stay comparable to published ones:

- a window is 9.01 s at 16 kHz. A segment shorter than that is padded by repeating itself to one window
  (the reference doubles it until long enough and may then score several windows of repeated audio; one
  window is the same information for less work). A longer one is scored on windows every 1 s, exactly as
  the reference does (the last <2 s past the final window are not scored), and the window scores averaged;
- every window is one shape, so the windows of all the segments of a call are stacked into `batch_size`-sized
  `session.run`s, across segments: ONNX Runtime's CPU kernels compute each window of a run alone, so a segment's
  scores are the same bytes whatever shares its run (tests/models/test_quality_dnsmos.py). On CPU a run costs the
  same per window at 1, 2 or 4 windows (0.46 s for P.835, whose first four convolutions over the full 900 x 161
  spectrogram are 96% of it): batching saves calls, not compute;
- P.835 (`sig_bak_ovr.onnx`) takes the raw window; P.808 (`model_v8.onnx`) takes a 120-bin log-mel
  spectrogram of the window minus its last 10 ms (n_fft 321, hop 160, Slaney mel, dB re the window's
  maximum, floor 80 dB below it, then (dB + 40) / 40);
- raw P.835 outputs go through the reference's quadratic calibration polynomials.

Mapping onto `QualityScores` (MOS, 1-5):
  overall           = OVRL  (P.835 overall quality)
  snr               = BAK   (background-noise intrusiveness: high means a clean background)
  recording_quality = SIG   (signal distortion of the speech itself: clipping, band-limiting, codec, reverb)
  extra             = {'sig', 'bak', 'ovrl', 'p808'} raw; P.808 is an overall-quality MOS, not intelligibility,
                      so `intelligibility` and `speaker_consistency` stay None.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.checkpoints import (
    CheckpointUnavailableError,
    check_s3,
    checkpoint_key,
    local_path,
    package_dir,
    pass_setting,
)
from models.signal import resample
from schemas.config import ModelSpec
from schemas.quality import QualityScores

SAMPLE_RATE = 16000
WINDOW = int(9.01 * SAMPLE_RATE)  # 144160 samples: the P.835 model's fixed input length
HOP = SAMPLE_RATE
P835_FILE = "sig_bak_ovr.onnx"
P808_FILE = "model_v8.onnx"

# Reference calibration (non-personalised DNSMOS), highest power first.
_POLY_SIG = (-0.08397278, 1.22083953, 0.0052439)
_POLY_BAK = (-0.13166888, 1.60915514, -0.39604546)
_POLY_OVR = (-0.06766283, 1.11546468, 0.04602535)

_N_FFT = 321
_MEL_HOP = 160
_N_MELS = 120


def bundled_model_dir() -> Path | None:
    """The wheel's dnsmos_models folder, found without importing speechmos (it pulls in librosa)."""
    root = package_dir("speechmos")
    return None if root is None else root / "dnsmos_models"


def model_dir(spec: ModelSpec, setting: str = "quality.model") -> Path:
    """Where the two ONNX files are: spec.checkpoint (a folder) or the speechmos wheel. Raises if absent."""
    folder = local_path(spec.checkpoint) if spec.checkpoint else bundled_model_dir()
    missing = [f for f in (P835_FILE, P808_FILE) if folder is None or not (folder / f).is_file()]
    if missing:
        where = str(folder) if spec.checkpoint else "the speechmos wheel (pip install speechmos)"
        raise CheckpointUnavailableError(
            f"DNSMOS: {', '.join(missing)} not found in {where}. Install `speechmos`, or pass a folder holding "
            f"{P835_FILE} and {P808_FILE} with {pass_setting(checkpoint_key(setting), 'DIR')}."
        )
    return folder


def _slaney_hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    linear = 3.0 * f / 200.0
    log = 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(f >= 1000.0, log, linear)


def _slaney_mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * (np.log(6.4) / 27.0)), 200.0 * m / 3.0)


def slaney_mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular filters on the Slaney mel scale, area-normalised (librosa's default bank)."""
    fft_freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    edges = _slaney_mel_to_hz(np.linspace(0.0, _slaney_hz_to_mel(sr / 2.0), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype(np.float32)


class DnsmosScorer:
    """DNSMOS P.835 (SIG/BAK/OVRL) + P.808 on ONNX Runtime (CPU). Deterministic; thread-light by default.

    spec.options: `threads` (intra-op threads per session, default 1), `arena` (ONNX Runtime CPU arena, default true).
    """

    name = "dnsmos"
    sample_rate = SAMPLE_RATE
    dimensions = ("overall", "snr", "recording_quality")

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> DnsmosScorer:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str) -> None:
        if (spec.checkpoint or "").startswith("s3://"):
            check_s3(spec.checkpoint, "DNSMOS", setting)
        else:
            model_dir(spec, setting)

    @classmethod
    def dimensions_for(cls, spec: ModelSpec) -> tuple[str, ...]:
        return cls.dimensions

    def __init__(self, spec: ModelSpec):
        folder = model_dir(spec)
        import onnxruntime as ort  # here, not at import: the driver checks the weights without loading the runtime

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(spec.options.get("threads", 1))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # ORT's memory patterns pre-plan buffers per input shape, which its arena then keeps: measured at 2 windows
        # per run, 100 MB more held after scoring, for no speed (tests/models: same scores)
        opts.enable_mem_pattern = False
        # The arena keeps the largest run's buffers (~190 MB per window) for the scorer's life; without it they
        # are freed after each run, at about 40% more scoring CPU time (make bench; options.arena: false)
        opts.enable_cpu_mem_arena = bool(spec.options.get("arena", True))
        self._p835 = ort.InferenceSession(str(folder / P835_FILE), opts, providers=["CPUExecutionProvider"])
        self._p808 = ort.InferenceSession(str(folder / P808_FILE), opts, providers=["CPUExecutionProvider"])
        self._p835_input = self._p835.get_inputs()[0].name
        self._p808_input = self._p808.get_inputs()[0].name
        self._mel = slaney_mel_filters(SAMPLE_RATE, _N_FFT, _N_MELS)
        # Periodic Hann, as scipy.signal.get_window('hann', n) gives for spectral analysis.
        self._hann = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_N_FFT) / _N_FFT)).astype(np.float32)
        self.batch_size = spec.batch_size
        source = spec.checkpoint or f"speechmos-{importlib.metadata.version('speechmos')}"
        self.model_id = f"dnsmos-p835-p808:{source}"

    @staticmethod
    def windows(x: np.ndarray) -> np.ndarray:
        """(n_windows, WINDOW) views of one 16 kHz segment, per the rules in the module docstring."""
        if x.size < WINDOW:
            return np.resize(x, WINDOW)[None]  # np.resize repeats the array cyclically
        n = int(np.floor(x.size / SAMPLE_RATE) - WINDOW / SAMPLE_RATE) + 1
        return np.lib.stride_tricks.sliding_window_view(x, WINDOW)[: (n - 1) * HOP + 1 : HOP]

    def p808_features(self, windows: np.ndarray) -> np.ndarray:
        """(B, WINDOW) -> (B, 900, 120) log-mel input of model_v8."""
        x = windows[:, :-_MEL_HOP]
        pad = _N_FFT // 2
        x = np.pad(x, ((0, 0), (pad, pad)))
        frames = np.lib.stride_tricks.sliding_window_view(x, _N_FFT, axis=-1)[:, ::_MEL_HOP]
        power = np.abs(np.fft.rfft(frames * self._hann, axis=-1)) ** 2
        mel = (power.astype(np.float32) @ self._mel).astype(np.float64)
        db = 10.0 * np.log10(np.maximum(mel, 1e-10))
        peak = db.max(axis=(1, 2), keepdims=True)
        db = np.maximum(db - peak, -80.0)  # dB re the window's maximum, 80 dB range
        return ((db + 40.0) / 40.0).astype(np.float32)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        """(B, WINDOW) -> (B, 4): calibrated SIG, BAK, OVRL and P.808."""
        raw = self._p835.run(None, {self._p835_input: windows})[0].astype(np.float64)
        p808 = self._p808.run(None, {self._p808_input: self.p808_features(windows)})[0][:, 0].astype(np.float64)
        sig, bak, ovr = (np.polyval(p, raw[:, k]) for k, p in enumerate((_POLY_SIG, _POLY_BAK, _POLY_OVR)))
        return np.stack([sig, bak, ovr, p808], axis=1)

    def score(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[QualityScores]:
        parts: list[np.ndarray] = []
        for i, w in enumerate(waveforms):
            x = resample(np.asarray(w, dtype=np.float32), sample_rate, SAMPLE_RATE)
            if x.size == 0 or not np.isfinite(x).all():
                raise ValueError(f"waveform {i} is empty or has non-finite samples")
            parts.append(self.windows(x))
        windows = np.concatenate(parts).astype(np.float32, copy=False)
        per_window = np.concatenate(
            [self._run(windows[s : s + self.batch_size]) for s in range(0, len(windows), self.batch_size)]
        )
        out = []
        for part in np.split(per_window, np.cumsum([len(p) for p in parts])[:-1]):
            sig, bak, ovrl, p808 = part.mean(axis=0)
            out.append(
                QualityScores(
                    model_id=self.model_id,
                    overall=float(ovrl),
                    snr=float(bak),
                    recording_quality=float(sig),
                    extra={"sig": float(sig), "bak": float(bak), "ovrl": float(ovrl), "p808": float(p808)},
                )
            )
        return out
