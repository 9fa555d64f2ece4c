"""Resemblyzer's GE2E voice encoder (3x256 LSTM, linear, ReLU, L2 norm) over 1.6 s partials of 40-band
mels, with the `pretrained.pt` that ships in the resemblyzer wheel. The package is located, not
imported: its import needs webrtcvad and pkg_resources, which modern environments lack."""

from __future__ import annotations

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
    pick_device,
)
from models.signal import resample, to_mono
from models.speaker import frontend
from schemas.config import ModelSpec

PARTIAL_FRAMES = 160  # 1.6 s of mel frames per partial utterance
PARTIAL_RATE = 1.3  # partials per second of audio
MIN_COVERAGE = 0.75  # a last partial needs this much real audio to be kept
# The network always runs on blocks of this many partials (the last one zero-padded): a partial's embedding then has
# the same bits whatever other partials share its call (the CPU kernels' rounding depends on the batch's shape, not
# on its other rows), so a clip's embedding does not depend on how clips are batched. 16 rows run as fast per
# partial as any larger block on CPU.
NET_BLOCK = 16


def weights_path(spec: ModelSpec, setting: str = "transcription.speaker_model") -> Path:
    if spec.checkpoint:
        path = local_path(spec.checkpoint)
    else:
        root = package_dir("resemblyzer")
        if root is None:
            raise CheckpointUnavailableError(
                "resemblyzer weights: the resemblyzer package is not installed (`pip install resemblyzer`), "
                f"or pass a pretrained.pt with {pass_setting(checkpoint_key(setting), 'FILE')}"
            )
        path = root / "pretrained.pt"
    if not path.is_file():
        raise CheckpointUnavailableError(
            f"resemblyzer weights: {path} not found; pass a pretrained.pt with {pass_setting(checkpoint_key(setting), 'FILE')}"
        )
    return path


def partial_starts(n_samples: int) -> list[int]:
    """Start frames of the 1.6 s partials covering `n_samples`, as resemblyzer computes them."""
    n_frames = int(np.ceil((n_samples + 1) / frontend.HOP))
    step = int(round(frontend.SAMPLE_RATE / PARTIAL_RATE / frontend.HOP))
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    coverage = (n_samples - starts[-1] * frontend.HOP) / (PARTIAL_FRAMES * frontend.HOP)
    if coverage < MIN_COVERAGE and len(starts) > 1:
        starts.pop()
    return starts


class ResemblyzerEmbedder:
    """embed(waveforms, sample_rate) -> (n, 256) unit vectors; cosine similarity compares speakers. The spec's
    batch_size is not used: the network always runs NET_BLOCK partials at a time."""

    sample_rate = frontend.SAMPLE_RATE
    dim = 256

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ResemblyzerEmbedder:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str = "transcription.speaker_model") -> None:
        if (spec.checkpoint or "").startswith("s3://"):
            check_s3(spec.checkpoint, "resemblyzer weights", setting)
        else:
            weights_path(spec, setting)

    def __init__(self, spec: ModelSpec):
        import torch

        from models.speaker.voice_encoder_net import VoiceEncoderNet

        path = weights_path(spec)
        self.model_id = "resemblyzer" if not spec.checkpoint else f"resemblyzer:{path.name}"
        self.device = pick_device(spec.device)
        self.trim_silence = bool(spec.options.get("trim_silence", True))
        self.net = VoiceEncoderNet()
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        # The checkpoint also holds GE2E training scalars (similarity_weight/bias) that inference does not use.
        self.net.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
        self.net.to(self.device).eval()

    def _partials(self, wav: np.ndarray) -> np.ndarray:
        wav = frontend.normalize_volume(wav)
        if self.trim_silence:
            wav = frontend.trim_long_silences(wav)
        starts = partial_starts(len(wav))
        end = (starts[-1] + PARTIAL_FRAMES) * frontend.HOP
        mel = frontend.mel_spectrogram(np.pad(wav, (0, max(0, end - len(wav)))))
        return np.stack([mel[s : s + PARTIAL_FRAMES] for s in starts])

    def embed(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """The partials of every waveform run through the network together, NET_BLOCK at a time, so a call pads at
        most one block however its partials split into clips (a segment's 1.5 s windows are one partial each)."""
        import torch

        parts = [self._partials(resample(to_mono(x), sample_rate, self.sample_rate)) for x in waveforms]
        out = np.zeros((len(waveforms), self.dim), dtype=np.float32)
        if not parts:
            return out
        mels = np.concatenate(parts)
        mels = np.concatenate([mels, np.zeros((-len(mels) % NET_BLOCK, *mels.shape[1:]), mels.dtype)])
        with torch.inference_mode():
            partial = np.concatenate(
                [
                    self.net(torch.from_numpy(mels[b : b + NET_BLOCK]).to(self.device)).cpu().numpy()
                    for b in range(0, len(mels), NET_BLOCK)
                ]
            )
        bounds = np.cumsum([0] + [len(p) for p in parts])
        for j in range(len(parts)):
            mean = partial[bounds[j] : bounds[j + 1]].mean(axis=0)
            out[j] = mean / max(np.linalg.norm(mean), 1e-12)
        return out
