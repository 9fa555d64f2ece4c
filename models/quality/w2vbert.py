"""The report's quality model: w2v-BERT 2.0 (transformers `Wav2Vec2BertModel`) + a trained MLP head.

waveforms -> torch fbank (on the model's device) -> encoder -> masked mean over frames -> head -> one score per
dimension the head was trained on, plus P(good) per dimension in `extra` (the reward-friendly form).

spec.checkpoint: backbone hub id or local folder (default: the one recorded in the head, else
'facebook/w2v-bert-2.0'). spec.options['head']: head checkpoint file or folder (required; see head.py).
Inputs are length-sorted and run `spec.batch_size` at a time; GPU runs under autocast in spec.dtype
(bfloat16 recommended), features and pooling in float32.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from models.checkpoints import CheckpointUnavailableError, pick_device, pick_dtype, resolve_hf_checkpoint
from models.quality.fbank import MIN_SAMPLES, SAMPLE_RATE, N_MELS, STRIDE, SeamlessFbank
from models.quality.head import QualityHead, head_file, load_head
from models.signal import resample
from schemas.config import ModelSpec
from schemas.quality import QualityScores

DEFAULT_BACKBONE = "facebook/w2v-bert-2.0"
BACKBONE_KEY = "quality.model.checkpoint"
HEAD_KEY = "quality.model.options.head"


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(torch.float32).unsqueeze(-1)
    return (hidden.float() * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def prepare(waveforms: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
    """Mono float32 at 16 kHz, at least MIN_SAMPLES long (zero-padded: a reward call may pass very short audio).
    No copies when the input is already that: at 64 x 10 s per batch, host work competes with the GPU."""
    out = []
    for i, w in enumerate(waveforms):
        x = resample(np.asarray(w, dtype=np.float32), sample_rate, SAMPLE_RATE)
        if x.size == 0:
            raise ValueError(f"waveform {i} is empty")
        out.append(x if x.size >= MIN_SAMPLES else np.pad(x, (0, MIN_SAMPLES - x.size)))
    return out


def length_batches(waveforms: Sequence[np.ndarray], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (less padding), longest first."""
    order = sorted(range(len(waveforms)), key=lambda i: -waveforms[i].size)
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def _head_path(spec: ModelSpec) -> Path:
    if not spec.options.get("head"):
        raise CheckpointUnavailableError(f"w2vbert quality scorer: no head checkpoint; set `{HEAD_KEY}` to a file made by `s2 train-quality-head`")
    path = head_file(spec.options["head"])
    if not path.is_file():
        raise CheckpointUnavailableError(f"w2vbert quality scorer: head checkpoint {str(path)!r} not found; set `{HEAD_KEY}`")
    return path


class W2vBertBackbone:
    """Fbank + w2v-BERT encoder + masked mean pooling: 16 kHz waveforms -> (B, hidden) utterance vectors."""

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype):
        expected = N_MELS * STRIDE
        if model.config.feature_projection_input_dim != expected:
            raise ValueError(f"backbone expects {model.config.feature_projection_input_dim}-dim features; the fbank makes {expected}")
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = dtype
        self.fbank = SeamlessFbank(device)

    @classmethod
    def load(cls, checkpoint: str, device: torch.device, dtype: torch.dtype) -> W2vBertBackbone:
        from transformers import Wav2Vec2BertModel

        path = resolve_hf_checkpoint(checkpoint, "quality scorer (w2v-BERT backbone)", BACKBONE_KEY)
        return cls(Wav2Vec2BertModel.from_pretrained(path), device, dtype)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def autocast(self):
        if self.device.type == "cuda" and self.dtype != torch.float32:
            return torch.autocast("cuda", dtype=self.dtype)
        return nullcontext()

    def pooled(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder forward + masked mean; gradients flow where the model has trainable parameters."""
        with self.autocast():
            hidden = self.model(input_features=features, attention_mask=mask).last_hidden_state
        frame_mask = self.model._get_feature_vector_attention_mask(hidden.shape[1], mask)  # adapter-aware
        return masked_mean(hidden, frame_mask)

    @torch.inference_mode()
    def embed(self, waveforms: Sequence[np.ndarray], batch_size: int) -> torch.Tensor:
        """(N, hidden) float32 on the backbone's device, in input order. Waveforms: 16 kHz, >= MIN_SAMPLES."""
        out = torch.empty(len(waveforms), self.hidden_size, device=self.device)
        for idx in length_batches(waveforms, batch_size):
            out[idx] = self.pooled(*self.fbank([waveforms[i] for i in idx]))
        return out


class W2vBertQualityScorer:
    name = "w2vbert"
    sample_rate = SAMPLE_RATE

    def __init__(self, spec: ModelSpec):
        path = _head_path(spec)
        head, backbone_state = load_head(path)
        backbone_id = spec.checkpoint or head.config.backbone or DEFAULT_BACKBONE
        device = pick_device(spec.device)
        backbone = W2vBertBackbone.load(backbone_id, device, pick_dtype(spec.dtype, device))
        if backbone_state:
            missing = set(backbone_state) - set(backbone.model.state_dict())
            if missing:
                raise ValueError(f"{path}: head carries backbone weights the backbone lacks, e.g. {sorted(missing)[0]}")
            backbone.model.load_state_dict(backbone_state, strict=False)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self._setup(backbone, head, f"w2vbert:{backbone_id}+head:{digest}", spec.batch_size)

    @classmethod
    def from_modules(cls, backbone: W2vBertBackbone, head: QualityHead, model_id: str, batch_size: int) -> W2vBertQualityScorer:
        """A scorer around modules already in memory (benchmarks, evaluation right after training)."""
        self = cls.__new__(cls)
        self._setup(backbone, head, model_id, batch_size)
        return self

    def _setup(self, backbone: W2vBertBackbone, head: QualityHead, model_id: str, batch_size: int) -> None:
        self.backbone = backbone
        self.head = head.to(backbone.device).eval()
        self.model_id = model_id
        self.batch_size = batch_size
        self.dimensions = head.dims

    @torch.inference_mode()
    def score(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[QualityScores]:
        if not len(waveforms):
            return []
        scores, p_good = self.head.predict(self.backbone.embed(prepare(waveforms, sample_rate), self.batch_size))
        scores, p_good = scores.cpu().numpy(), p_good.cpu().numpy()
        return [
            QualityScores(
                model_id=self.model_id,
                **{d: float(scores[i, k]) for k, d in enumerate(self.dimensions)},
                extra={f"p_good_{d}": float(p_good[i, k]) for k, d in enumerate(self.dimensions)},
            )
            for i in range(len(waveforms))
        ]


def check_available(spec: ModelSpec) -> None:
    """Preflight: the head file exists and is readable; the backbone resolves (local folder, cache or hub)."""
    head, _ = load_head(_head_path(spec))
    resolve_hf_checkpoint(spec.checkpoint or head.config.backbone or DEFAULT_BACKBONE, "quality scorer (w2v-BERT backbone)", BACKBONE_KEY)
