"""The quality head: an MLP over the pooled w2v-BERT embedding, one output per quality dimension, and its file.

The head predicts labels normalised per dimension (z = (y - mean) / std, statistics of its training split)
and de-normalises inside `predict`, so scores come out on the labels' own scale. Each dimension also has a
good/bad threshold (label units); `(z - z_threshold) / margin` (margin in label standard deviations) is the
logit of "good" that the focal term of the training loss acts on, and that the scorer reports as P(good).

Checkpoint: one torch file (`quality_head.pt`, or that name inside a folder) holding plain data only
(loadable with weights_only=True): format tag, config (dims, sizes, backbone id, statistics, thresholds),
the head's state dict, and the state of any backbone layers that training unfroze.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from models.quality.w2vbert import HEAD_FILE, head_config_file, head_file
from schemas.quality import QUALITY_DIMENSIONS

HEAD_FORMAT = "s2-quality-head/1"


@dataclass
class HeadConfig:
    dims: list[str]
    in_features: int
    hidden: int
    label_mean: list[float]
    label_std: list[float]
    thresholds: list[float]
    margin: float = 0.25
    backbone: str | None = None
    unfrozen_layers: int = 0

    def __post_init__(self) -> None:
        unknown = [d for d in self.dims if d not in QUALITY_DIMENSIONS]
        if unknown or not self.dims:
            raise ValueError(f"head dims must be a non-empty subset of {QUALITY_DIMENSIONS}; got {self.dims}")
        if not len(self.dims) == len(self.label_mean) == len(self.label_std) == len(self.thresholds):
            raise ValueError("head config: dims, label_mean, label_std and thresholds differ in length")


class QualityHead(nn.Module):
    def __init__(self, config: HeadConfig):
        super().__init__()
        self.config = config
        self.net = nn.Sequential(
            nn.LayerNorm(config.in_features),
            nn.Linear(config.in_features, config.hidden),
            nn.GELU(),
            nn.Linear(config.hidden, len(config.dims)),
        )
        self.register_buffer("label_mean", torch.tensor(config.label_mean, dtype=torch.float32))
        self.register_buffer("label_std", torch.tensor(config.label_std, dtype=torch.float32))
        self.register_buffer(
            "z_threshold", (torch.tensor(config.thresholds, dtype=torch.float32) - self.label_mean) / self.label_std
        )

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.config.dims)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, in_features) -> normalised predictions (B, D)."""
        return self.net(pooled.float())

    def good_logits(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.z_threshold) / self.config.margin

    def normalise(self, labels: torch.Tensor) -> torch.Tensor:
        return (labels - self.label_mean) / self.label_std

    def predict(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores in label units, P(good)) per dimension."""
        z = self.forward(pooled)
        return z * self.label_std + self.label_mean, torch.sigmoid(self.good_logits(z))


def save_head(path: str | Path, head: QualityHead, backbone_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the checkpoint atomically (tmp + rename); a folder path gets quality_head.pt inside."""
    target = Path(path).expanduser()
    if target.suffix != ".pt":
        target.mkdir(parents=True, exist_ok=True)
        target = target / HEAD_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": HEAD_FORMAT,
        "config": asdict(head.config),
        "state_dict": {k: v.detach().cpu() for k, v in head.state_dict().items()},
        "backbone_state": {k: v.detach().cpu() for k, v in (backbone_state or {}).items()},
    }
    tmp = target.with_name(target.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(target)
    # the config again, as JSON, so a process without torch (the driver's start-up check) can read the head's dims
    side = head_config_file(target)
    side.with_name(side.name + ".tmp").write_text(json.dumps(payload["config"], indent=1))
    side.with_name(side.name + ".tmp").replace(side)
    return target


def load_head(path: str | Path) -> tuple[QualityHead, dict[str, torch.Tensor]]:
    """(head in eval mode, backbone layer state to apply, possibly empty)."""
    payload = torch.load(head_file(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != HEAD_FORMAT:
        raise ValueError(f"{path}: not a quality head checkpoint ({HEAD_FORMAT})")
    head = QualityHead(HeadConfig(**payload["config"]))
    head.load_state_dict(payload["state_dict"])
    return head.eval(), payload["backbone_state"]


def unfrozen_state(model: nn.Module, layers: Sequence[int]) -> dict[str, torch.Tensor]:
    """The parameters of encoder layers `layers`, keyed as in model.state_dict()."""
    prefixes = tuple(f"encoder.layers.{i}." for i in layers)
    return {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}
