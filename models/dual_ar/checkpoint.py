"""Checkpoints in the released S2 format: config.json (`fish_qwen3_omni`), bfloat16 safetensors (sharded with an
index, or one file) and the tokenizer, all in one folder.

Released key names carry prefixes that the model's names do not: `text_model.model.X` is the slow AR's X,
`audio_decoder.codebook_embeddings.*` the fusion table, any other `audio_decoder.Y` the fast AR's `fast_Y`.
Loading is strict: every key the model has must be in the files with its shape, and nothing else.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import Tensor

import storage
from models.dual_ar.config import DualARConfig
from models.dual_ar.model import DualARTransformer
from models.dual_ar.tokens import TokenIds, TokenizerError, load_tokenizer, save_tokenizer
from models.dual_ar.weights import INDEX, SINGLE, CheckpointFormatError, weight_files

TEXT_PREFIX = "text_model.model."
AUDIO_PREFIX = "audio_decoder."
CODEBOOKS = "codebook_embeddings."
FAST = "fast_"
DEFAULT_SHARD_BYTES = 4 * 2**30


def released_key(name: str) -> str:
    """Model parameter name -> key in the released files."""
    if name.startswith(CODEBOOKS):
        return AUDIO_PREFIX + name
    if name.startswith(FAST):
        return AUDIO_PREFIX + name[len(FAST) :]
    return TEXT_PREFIX + name


def model_key(key: str) -> str:
    """Key in the released files -> model parameter name (unprefixed keys are taken as they are)."""
    if key.startswith(TEXT_PREFIX):
        return key[len(TEXT_PREFIX) :]
    if key.startswith(AUDIO_PREFIX):
        rest = key[len(AUDIO_PREFIX) :]
        return rest if rest.startswith(CODEBOOKS) else FAST + rest
    return key


def _listed(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def read_weights(folder: str | Path) -> dict[str, Tensor]:
    """All tensors of a checkpoint folder under their model names (as stored: bfloat16 for released files)."""
    from safetensors.torch import load_file

    files = weight_files(Path(folder))
    if not files:
        raise CheckpointFormatError(f"{folder}: no {INDEX} or {SINGLE}")
    weights: dict[str, Tensor] = {}
    for f in files:
        for key, tensor in load_file(str(f)).items():
            weights[model_key(key)] = tensor
    return weights


def check_fits(expected: dict[str, tuple], found: dict[str, tuple], source: str) -> None:
    """Fail with one line naming every missing, unexpected or mis-shaped key (as named in the released files),
    given the model's and the files' shapes by model name."""
    missing = sorted(released_key(k) for k in expected.keys() - found.keys())
    unexpected = sorted(released_key(k) for k in found.keys() - expected.keys())
    shapes = sorted(
        f"{released_key(k)} {tuple(found[k])} (model {tuple(expected[k])})"
        for k in expected.keys() & found.keys()
        if tuple(found[k]) != tuple(expected[k])
    )
    problems = [
        f"{what} {_listed(keys)}"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes))
        if keys
    ]
    if problems:
        raise CheckpointFormatError(f"{source}: weights do not fit the config: {'; '.join(problems)}")


def load_weights_strict(model: DualARTransformer, weights: dict[str, Tensor], source: str) -> None:
    """Assign `weights` to the model, failing with one line that names every missing, unexpected or
    mis-shaped key (as named in the released files)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_fits(expected, {k: tuple(v.shape) for k, v in weights.items()}, source)
    model.load_state_dict(weights, strict=True, assign=True)


_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64}


class WeightSlices:
    """Rows of the tensors of a checkpoint folder, read from the safetensors files with plain positioned reads (each
    rank of a sharded run reads only its own rows; unlike a memory map, nothing of the files stays in the process's
    memory). Keys are model names. The format: an 8-byte little-endian header length, a JSON header of
    {key: {dtype, shape, data_offsets}}, then the row-major data."""

    def __init__(self, folder: str | Path):
        files = weight_files(Path(folder))
        if not files:
            raise CheckpointFormatError(f"{folder}: no {INDEX} or {SINGLE}")
        self.entries: dict[str, tuple[Path, int, torch.dtype, tuple]] = {}
        for f in files:
            with open(f, "rb") as handle:
                size = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(size))
            for key, entry in header.items():
                if key == "__metadata__":
                    continue
                if entry["dtype"] not in _DTYPES:
                    raise CheckpointFormatError(f"{f}: {key} has dtype {entry['dtype']} (floating point expected)")
                start = 8 + size + entry["data_offsets"][0]
                self.entries[model_key(key)] = (f, start, _DTYPES[entry["dtype"]], tuple(entry["shape"]))

    def shapes(self) -> dict[str, tuple]:
        return {name: entry[3] for name, entry in self.entries.items()}

    def rows(self, name: str, start: int, stop: int) -> Tensor:
        path, offset, dtype, shape = self.entries[name]
        if not shape:
            start, stop, shape = 0, 1, (1,)
        row = dtype.itemsize * math.prod(shape[1:])
        data = bytearray(row * (stop - start))
        with open(path, "rb") as f:
            f.seek(offset + row * start)
            f.readinto(data)
        out = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
        return out.view(stop - start, *shape[1:]) if self.entries[name][3] else out.view(())


def from_s2_checkpoint(
    folder: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    attention: str = "sdpa",
    **config_changes,
):
    """(model, tokenizer) of a released-format folder, the model in eval mode on `device` in `dtype`.
    `config_changes` replace config fields (e.g. codebook_embedding_scale) before the weights are loaded."""
    model, tokenizer = s2_skeleton(folder, attention=attention, **config_changes)
    load_weights_strict(model, read_weights(folder), str(folder))
    return model.to(device=device, dtype=dtype).eval(), tokenizer


def s2_skeleton(folder: str | Path, *, attention: str = "sdpa", **config_changes):
    """(model on the meta device, tokenizer) of a released-format folder: its config and tokenizer, checked
    against each other, and no weights."""
    folder = Path(folder)
    config = DualARConfig.load(folder)
    if config_changes:
        config = config.replace(**config_changes)
    tokenizer = load_tokenizer(folder)
    ids = TokenIds.from_tokenizer(tokenizer, config.codebook_size, source=str(folder / "tokenizer.json"))
    if (ids.semantic_begin, ids.semantic_end) != (config.semantic_begin_id, config.semantic_end_id):
        raise TokenizerError(
            f"{folder}: the tokenizer's semantic tokens are ids {ids.semantic_begin}..{ids.semantic_end}, "
            f"config.json says {config.semantic_begin_id}..{config.semantic_end_id}"
        )
    if len(tokenizer) > config.vocab_size:
        raise TokenizerError(
            f"{folder}: the tokenizer has {len(tokenizer)} tokens, more than text_config.vocab_size {config.vocab_size}"
        )
    with torch.device("meta"):
        model = DualARTransformer(config, attention=attention)
    return model, tokenizer


def _write_atomic(path: Path, write) -> None:
    """`write(tmp)` then rename: nothing half-written is ever seen under `path`."""
    with storage.local_atomic(path) as tmp:
        write(tmp)


def save_s2_checkpoint(
    model: DualARTransformer,
    tokenizer,
    folder: str | Path,
    *,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """Write the released format: config.json, `model-0000i-of-0000n.safetensors` shards of at most
    `max_shard_bytes` (in `dtype`, bfloat16 as released) with model.safetensors.index.json, and the tokenizer.
    The index is written last: a reader that finds it finds every shard it names."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in weight_files(folder):
        stale.unlink(missing_ok=True)
    (folder / INDEX).unlink(missing_ok=True)
    tensors = {
        released_key(k): v.detach().to(device="cpu", dtype=dtype).contiguous() for k, v in model.state_dict().items()
    }
    shards: list[dict[str, Tensor]] = [{}]
    size = 0
    for key, t in tensors.items():
        if shards[-1] and size + t.nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = t
        size += t.nbytes
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        _write_atomic(folder / name, lambda p, shard=shard: save_file(shard, str(p), metadata={"format": "pt"}))
        weight_map.update(dict.fromkeys(shard, name))
    _write_atomic(
        folder / "config.json", lambda p: p.write_text(json.dumps(model.config.to_released(), indent=2) + "\n")
    )
    save_tokenizer(tokenizer, folder)
    index = {"metadata": {"total_size": sum(t.nbytes for t in tensors.values())}, "weight_map": weight_map}
    _write_atomic(folder / INDEX, lambda p: p.write_text(json.dumps(index, indent=2) + "\n"))
    return folder
