"""The report's quality model: w2v-BERT 2.0 (transformers `Wav2Vec2BertModel`) + a trained MLP head.

waveforms -> torch fbank (on the model's device) -> encoder -> masked mean over frames -> head -> one score per
dimension the head was trained on, plus P(good) per dimension in `extra` (the reward-friendly form).

spec.checkpoint: backbone hub id or local folder (default: the one recorded in the head, else
'facebook/w2v-bert-2.0'). spec.options['head']: head checkpoint file or folder (required; see head.py).
Inputs are length-sorted and run `spec.batch_size` at a time; GPU runs under autocast in spec.dtype
(bfloat16 recommended), features and pooling in float32. The backbone (models/quality/w2vbert_backbone.py) and
the head load with the model: importing this module imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import storage
from models.checkpoints import (
    CheckpointUnavailableError,
    check_hf_checkpoint,
    check_s3,
    local_path,
    pass_setting,
    pick_device,
    pick_dtype,
)
from schemas.config import ModelSpec
from schemas.quality import QualityScores

if TYPE_CHECKING:
    from models.quality.head import QualityHead
    from models.quality.w2vbert_backbone import W2vBertBackbone

DEFAULT_BACKBONE = "facebook/w2v-bert-2.0"
SAMPLE_RATE = 16000  # the rate of w2v-BERT's features (models/quality/fbank.py)
HEAD_FILE = "quality_head.pt"


def head_file(path: str | Path) -> Path:
    p = Path(path).expanduser()
    return p / HEAD_FILE if p.is_dir() else p


def head_config_file(head: Path) -> Path:
    """The JSON copy of a head's config beside it (written by models.quality.head.save_head)."""
    return head.with_suffix(".json")


def _head_path(spec: ModelSpec, setting: str = "quality.model") -> Path:
    if not spec.options.get("head"):
        raise CheckpointUnavailableError(
            f"w2vbert quality scorer: no head checkpoint; pass a file made by `s2 train-quality-head` with {pass_setting(setting + '.options.head', 'FILE')}"
        )
    path = head_file(local_path(str(spec.options["head"])))
    if not path.is_file():
        raise CheckpointUnavailableError(
            f"w2vbert quality scorer: head checkpoint {str(path)!r} not found; pass it with {pass_setting(setting + '.options.head', 'FILE')}"
        )
    return path


class W2vBertQualityScorer:
    name = "w2vbert"
    sample_rate = SAMPLE_RATE

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> W2vBertQualityScorer:
        return cls(spec)

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str) -> None:
        """The head file is there and the backbone can be found (a local folder, s3://, the cache or the hub); nothing
        is loaded or downloaded."""
        head = str(spec.options.get("head") or "")
        if head.startswith("s3://"):
            check_s3(head, "w2vbert quality head", f"{setting}.options.head")
        else:
            _head_path(spec, setting)
        check_hf_checkpoint(spec.checkpoint or DEFAULT_BACKBONE, "quality scorer (w2v-BERT backbone)", setting)

    @classmethod
    def dimensions_for(cls, spec: ModelSpec) -> tuple[str, ...] | None:
        """The dimensions the head scores, from its JSON config (None for a head saved without one)."""
        head = str(spec.options.get("head") or "")
        if storage.is_s3(head):  # its JSON config, read where it lies (the head itself loads on the workers)
            file = head if Path(head).suffix else storage.join(head, HEAD_FILE)
            side = file[: -len(Path(file).suffix)] + ".json"
            return tuple(json.loads(storage.read_text(side))["dims"]) if storage.exists(side) else None
        side = head_config_file(_head_path(spec))
        return tuple(json.loads(side.read_text())["dims"]) if side.is_file() else None

    def __init__(self, spec: ModelSpec):
        from models.quality.head import load_head
        from models.quality.w2vbert_backbone import W2vBertBackbone

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
    def from_modules(
        cls, backbone: W2vBertBackbone, head: QualityHead, model_id: str, batch_size: int
    ) -> W2vBertQualityScorer:
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

    def score(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> list[QualityScores]:
        import torch

        from models.quality.w2vbert_backbone import prepare

        if not len(waveforms):
            return []
        with torch.inference_mode():
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
