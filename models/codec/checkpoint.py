"""Codec weights in the released format: `codec.pth`, a torch state dict, with our `codec.json` sidecar beside it.

Reading accepts what the reference's loaders accept: a flat state dict, or one under `state_dict`; when any key
starts with `generator.`, only those keys (prefix removed), as in a training checkpoint beside its discriminators.
Weight norm may be stored in either of torch's styles, `X.parametrizations.weight.original0/original1` or the older
`X.weight_g/weight_v`. Unlike the reference (strict=False), a file that does not fit the architecture exactly fails
with one line naming the keys. Writing produces the released layout: a flat state dict whose convolutions use the
new style and whose VQ projections (dac's layers) the old one, in the reference's key order.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import torch

import storage
from models.codec.config import CodecConfig
from models.codec.model import S2CodecModel
from models.codec.weights import WEIGHTS_FILE, CheckpointMismatchError, read_config, sidecar_file

GENERATOR_PREFIX = "generator."
NEW_STYLE = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
# the projections of dac's VectorQuantize, which the released file stores in the old style
OLD_STYLE_KEYS = re.compile(
    r"^quantizer\.(semantic_quantizer|quantizer)\.quantizers\.\d+\.(in_proj|out_proj)\.parametrizations\.weight\.original[01]$"
)
SHOWN = 3


class RandomWeightsWarning(UserWarning):
    """A codec with random weights was built or loaded: its codes and audio carry no meaning."""


def warn_random(where: str) -> None:
    warnings.warn(
        f"s2 codec {where}: random-init weights, not a trained codec; its codes and audio mean nothing",
        RandomWeightsWarning,
        stacklevel=3,
    )


def model_key(key: str) -> str:
    """A file's key under our model's name: either weight-norm style becomes the parametrisation."""
    owner, _, leaf = key.rpartition(".")
    return f"{owner}.{NEW_STYLE[leaf]}" if leaf in NEW_STYLE else key


def release_key(key: str) -> str:
    """Our model's key as the released file names it: dac's VQ projections in the old weight-norm style."""
    if OLD_STYLE_KEYS.match(key):
        return key.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
    return key


def read_state(weights: Path) -> dict[str, torch.Tensor]:
    """The generator's tensors as the file names them."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # not a zip-format torch file, truncated, or holding more than tensors
        raise CheckpointMismatchError(
            f"s2 codec: {weights} is not a readable torch state dict ({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(f"s2 codec: {weights} does not hold a state dict of tensors")
    generator = {k[len(GENERATOR_PREFIX) :]: v for k, v in state.items() if k.startswith(GENERATOR_PREFIX)}
    return generator or state


def _listed(what: str, keys: list[str]) -> str:
    return f"{what} ({len(keys)}): " + ", ".join(keys[:SHOWN]) + (", ..." if len(keys) > SHOWN else "")


def fit_state(model: S2CodecModel, state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """The file's tensors under the model's names; CheckpointMismatchError naming every key that does not fit."""
    file_key = {model_key(k): k for k in state}  # our name -> the file's
    expected = model.state_dict()
    missing = [release_key(k) for k in expected if k not in file_key]
    unexpected = [theirs for ours, theirs in file_key.items() if ours not in expected]
    misshaped = [
        f"{theirs} {tuple(state[theirs].shape)} where {tuple(expected[ours].shape)} is expected"
        for ours, theirs in file_key.items()
        if ours in expected and state[theirs].shape != expected[ours].shape
    ]
    if missing or unexpected or misshaped:
        problems = [
            _listed(what, keys)
            for what, keys in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("mis-shaped keys", misshaped),
            )
            if keys
        ]
        raise CheckpointMismatchError(f"s2 codec: {where}: " + "; ".join(problems))
    return {ours: state[theirs] for ours, theirs in file_key.items()}


def load_codec(weights: Path) -> S2CodecModel:
    """A float32 model on the CPU from a `.pth` file (see models.codec.weights.weights_file), in eval mode. Float32
    weights stay memory-mapped from the file: processes loading the same file share its pages."""
    config, config_source = read_config(weights)
    with torch.device("meta"):  # shapes only: no memory and no random init for weights about to be replaced
        model = S2CodecModel(config)
    state = fit_state(model, read_state(weights), f"{weights} does not fit the architecture of {config_source}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, assign=True)
    if config.random_init:
        warn_random(f"loaded from {weights}")
    return model.eval()


def random_codec(config: CodecConfig, seed: int = 0) -> S2CodecModel:
    """A codec with freshly drawn weights (each layer's usual init), the same for the same seed; says so on use."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = S2CodecModel(dataclasses.replace(config, random_init=True))
    warn_random("initialised")
    return model.eval()


def save_codec(model: S2CodecModel, folder: str | Path) -> Path:
    """Write `codec.pth` (released layout) and `codec.json` (the config) into `folder`; returns the weights' path.
    Each file appears under its final name only once complete."""
    if model.weight_norm_folded:
        raise ValueError(
            "s2 codec: a model with folded weight norm no longer has the checkpoint's keys; save the model before folding"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    state = {release_key(k): v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for path, write in (
        (sidecar_file(weights), lambda p: p.write_text(model.config.to_json())),
        (weights, lambda p: torch.save(state, p)),
    ):
        with storage.local_atomic(path) as partial:
            write(partial)
    return weights
