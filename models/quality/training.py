"""Training the quality head (pure torch): MSE on the per-dimension labels + focal loss on good/bad.

The report's objective: regression to the quality labels plus a focal loss on the binary good/bad
decision, which concentrates on the samples near (or on the wrong side of) the filter threshold. Here the
"good" logit of a dimension is the head's own normalised prediction relative to that dimension's threshold
(see head.py), so both terms shape the same number the filter later thresholds.

Frozen backbone (default): the pooled embeddings are computed once, then the head trains on them for every
epoch (seconds, even for thousands of clips). `unfreeze_top=N` also trains the top N encoder layers (at
`lr * backbone_lr_scale`); then fbank features are cached once and the encoder runs every step. The backbone
stays in eval mode either way (no layerdrop or SpecAugment), so a run is reproducible for a seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoints import CheckpointUnavailableError, pick_device, pick_dtype
from models.quality.head import HeadConfig, QualityHead, save_head, unfrozen_state
from models.quality.w2vbert_backbone import W2vBertBackbone, length_batches, prepare
from schemas.quality import QUALITY_DIMENSIONS


@dataclass
class TrainResult:
    checkpoint: Path
    dims: list[str]
    initial_val_loss: float | None  # before any update (None without a validation split)
    train_loss: list[float]  # per epoch
    val_loss: list[float]  # per epoch
    best_epoch: int  # 1-based epoch whose head was saved
    n_train: int
    n_val: int


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Binary focal loss (Lin et al. 2017), mean over elements; gamma=0 is plain binary cross-entropy."""
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_true = p * targets + (1 - p) * (1 - targets)
    return ((1 - p_true) ** gamma * ce).mean()


def _split(n: int, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_quality_head(
    waveforms: Sequence[np.ndarray],
    sample_rate: int,
    labels: Mapping[str, Sequence[float]],
    *,
    backbone: str,
    out: str | Path,
    good: Sequence[float] | np.ndarray | None = None,
    thresholds: Mapping[str, float] | None = None,
    hidden: int = 256,
    epochs: int = 30,
    lr: float = 1e-3,
    batch_size: int = 16,
    unfreeze_top: int = 0,
    backbone_lr_scale: float = 0.1,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "float32",
    focal_weight: float = 1.0,
    focal_gamma: float = 2.0,
    margin: float = 0.25,
    weight_decay: float = 0.01,
) -> TrainResult:
    """Train a head on `backbone` (hub id or local folder) and save it to `out` (file or folder).

    labels: dimension name -> one value per waveform (any scale; thresholds in the same units).
    good: optional 0/1 per waveform (all dimensions) or (N, D) per dimension; default: label >= threshold.
    thresholds: per-dimension good/bad boundary; default: the training split's median of that dimension.
    The saved head is the one with the lowest validation loss (the last one without a validation split).
    """
    dims = list(labels)
    unknown = [d for d in dims if d not in QUALITY_DIMENSIONS]
    if unknown or not dims:
        raise ValueError(f"labels: dimensions must be a non-empty subset of {QUALITY_DIMENSIONS}; got {dims}")
    y = np.stack([np.asarray(labels[d], dtype=np.float64) for d in dims], axis=1)
    n = len(waveforms)
    if y.shape[0] != n or n < 2:
        raise ValueError(
            f"need >= 2 waveforms and one label per waveform per dimension; got {n} waveforms, {y.shape[0]} labels"
        )
    if not np.isfinite(y).all():
        raise ValueError("labels contain NaN or infinite values")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1; got {epochs}")

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_idx, val_idx = _split(n, val_fraction, rng)
    thr = np.array(
        [
            thresholds[d] if thresholds and d in thresholds else float(np.median(y[train_idx, k]))
            for k, d in enumerate(dims)
        ]
    )
    if good is None:
        g = (y >= thr).astype(np.float32)
    else:
        g = np.asarray(good, dtype=np.float32)
        g = np.repeat(g[:, None], len(dims), axis=1) if g.ndim == 1 else g
        if g.shape != y.shape:
            raise ValueError(f"good: expected shape ({n},) or {y.shape}; got {g.shape}")

    dev = pick_device(device)
    try:
        bb = W2vBertBackbone.load(backbone, dev, pick_dtype(dtype, dev))
    except CheckpointUnavailableError as exc:
        raise CheckpointUnavailableError(
            f"train_quality_head: backbone {backbone!r} is not available. Download it on a machine with internet "
            f"(`huggingface-cli download {backbone}`) and pass the local folder as the backbone (--backbone /path)."
        ) from exc
    std = y[train_idx].std(axis=0)
    config = HeadConfig(
        dims=dims,
        in_features=bb.hidden_size,
        hidden=hidden,
        label_mean=y[train_idx].mean(axis=0).tolist(),
        label_std=np.where(std > 1e-6, std, 1.0).tolist(),
        thresholds=thr.tolist(),
        margin=margin,
        backbone=backbone,
        unfrozen_layers=unfreeze_top,
    )
    head = QualityHead(config).to(dev)
    z_all = head.normalise(torch.tensor(y, dtype=torch.float32, device=dev))
    g_all = torch.tensor(g, device=dev)

    audio = prepare(waveforms, sample_rate)
    n_layers = len(bb.model.encoder.layers)
    if not 0 <= unfreeze_top <= n_layers:
        raise ValueError(f"unfreeze_top must be between 0 and the backbone's {n_layers} layers; got {unfreeze_top}")
    top = list(range(n_layers - unfreeze_top, n_layers)) if unfreeze_top > 0 else []
    for p in bb.model.parameters():
        p.requires_grad_(False)
    for i in top:
        for p in bb.model.encoder.layers[i].parameters():
            p.requires_grad_(True)

    if top:
        feats = [bb.fbank([a]) for a in audio]  # cached once; (1, T, 160) + mask each
        trainable = [p for i in top for p in bb.model.encoder.layers[i].parameters()]

        def embed(idx: np.ndarray) -> torch.Tensor:
            width = max(feats[i][0].shape[1] for i in idx)
            f = torch.cat([F.pad(feats[i][0], (0, 0, 0, width - feats[i][0].shape[1])) for i in idx])
            m = torch.cat([F.pad(feats[i][1], (0, width - feats[i][1].shape[1])) for i in idx])
            return bb.pooled(f, m)
    else:
        cached = bb.embed(audio, batch_size).clone()  # pooled once: every epoch trains on these
        trainable = []

        def embed(idx: np.ndarray) -> torch.Tensor:
            return cached[torch.as_tensor(idx, device=dev)]

    groups = [{"params": head.parameters(), "lr": lr}]
    if trainable:
        groups.append({"params": trainable, "lr": lr * backbone_lr_scale})
    opt = torch.optim.AdamW(groups, weight_decay=weight_decay)

    def loss_of(idx: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(idx, device=dev)
        z = head(embed(idx))
        return F.mse_loss(z, z_all[t]) + focal_weight * focal_loss(head.good_logits(z), g_all[t], focal_gamma)

    def evaluate(idx: np.ndarray) -> float:
        head.eval()
        with torch.no_grad():
            batches = [np.asarray(b) for b in length_batches([audio[i] for i in idx], batch_size)]
            return float(sum(loss_of(idx[b]).item() * len(b) for b in batches) / len(idx))

    initial = evaluate(val_idx) if len(val_idx) else None
    train_hist: list[float] = []
    val_hist: list[float] = []
    best = (float("inf"), 0, None, None)
    for epoch in range(1, epochs + 1):
        head.train()
        perm = train_idx[rng.permutation(len(train_idx))]
        total = 0.0
        for s in range(0, len(perm), batch_size):
            idx = perm[s : s + batch_size]
            loss = loss_of(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_hist.append(total / len(perm))
        score = evaluate(val_idx) if len(val_idx) else train_hist[-1]
        if len(val_idx):
            val_hist.append(score)
        if score < best[0] or not len(val_idx):
            state = {k: v.detach().clone() for k, v in head.state_dict().items()}
            layers = {k: v.detach().clone() for k, v in unfrozen_state(bb.model, top).items()}
            best = (score, epoch, state, layers)
    _, best_epoch, state, bb_state = best
    head.load_state_dict(state)
    path = save_head(out, head, bb_state)
    return TrainResult(path, dims, initial, train_hist, val_hist, best_epoch, len(train_idx), len(val_idx))
