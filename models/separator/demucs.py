"""Demucs separators (Meta, MIT; the report uses htdemucs), read from demucs' own safetensors export.

`spec.checkpoint` is one of:
- a pretrained name: 'htdemucs' (the default), 'htdemucs_ft', ..., or 'namespace/name'. Its Hugging Face
  repository (adefossez/HTDemucs, adefossez/HTDemucs-ft, ...: where demucs.pretrained.get_model looks
  first) is taken from the local cache, or downloaded unless HF_HUB_OFFLINE=1;
- a folder holding such a repository: `<name>.yaml` (the bag: models, weights, segment) beside one
  `<signature>.safetensors` per model (`huggingface-cli download adefossez/HTDemucs --local-dir DIR`);
- one `.safetensors` file: a single model as demucs exports it, the state dict as tensors and the model
  class, args and kwargs as JSON metadata. `save_demucs` writes one (e.g. for a model you trained).
Files in this layout load without unpickling anything; the model class must be one of demucs'.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from models.checkpoints import (
    CheckpointUnavailableError,
    check_hf_checkpoint,
    check_s3,
    local_path,
    pass_setting,
    pick_device,
    pick_dtype,
    resolve_hf_checkpoint,
)
from models.separator.base import Separator
from schemas.config import ModelSpec

if TYPE_CHECKING:
    import torch

DEFAULT_PRETRAINED = "htdemucs"
PUBLISHED_RATE = 44100  # every published demucs model
MODEL_CLASSES = {"demucs.htdemucs.HTDemucs", "demucs.hdemucs.HDemucs", "demucs.demucs.Demucs"}
INNER_OVERLAP = 0.25  # demucs' default overlap between its own segments inside a chunk


def _encode(value: Any) -> Any:
    """JSON for model init arguments, with fractions (HTDemucs' `segment`) as demucs' hub export writes them."""
    if isinstance(value, Fraction):
        return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def save_demucs(model: torch.nn.Module, path: str | Path) -> None:
    """Write one demucs model as a `.safetensors` file that the separator reads."""
    from safetensors.torch import save_file

    args, kwargs = model._init_args_kwargs  # recorded by demucs' @capture_init
    klass = f"{type(model).__module__}.{type(model).__name__}"
    metadata = {"klass": klass, "args": json.dumps(_encode(args)), "kwargs": json.dumps(_encode(kwargs))}
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path), metadata=metadata)


def _unavailable(checkpoint: str, problem: str, setting: str) -> CheckpointUnavailableError:
    return CheckpointUnavailableError(
        f"htdemucs separator: checkpoint {checkpoint!r} {problem}. Pass a pretrained name (e.g. 'htdemucs'), a folder with a "
        f"demucs model repository (`huggingface-cli download adefossez/HTDemucs --local-dir DIR`) or a demucs .safetensors file, "
        f"with {pass_setting(setting + '.checkpoint', '...')}; or use `--profile local`."
    )


def _metadata(path: Path, checkpoint: str, setting: str) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:  # numpy: reading metadata must not import torch
            meta = f.metadata() or {}
    except Exception as exc:  # truncated or not safetensors
        raise _unavailable(
            checkpoint, f"has an unreadable model file {path.name} ({type(exc).__name__}: {exc})", setting
        ) from exc
    if meta.get("klass") not in MODEL_CLASSES:
        raise _unavailable(
            checkpoint,
            f"has {path.name} whose model class {meta.get('klass')!r} is not one of {sorted(MODEL_CLASSES)}",
            setting,
        )
    return meta


def _looks_like_path(checkpoint: str) -> bool:
    return checkpoint.startswith(("/", ".", "~")) or checkpoint.endswith((".safetensors", ".yaml"))


def hub_repo(name: str) -> str:
    """The Hugging Face repository of a published demucs model (where demucs.pretrained looks first):
    'htdemucs' -> adefossez/HTDemucs, 'htdemucs_ft' -> adefossez/HTDemucs-ft, 'mdx_extra' -> adefossez/Demucs-mdx_extra;
    'namespace/name' takes that namespace."""
    namespace, _, name = name.rpartition("/")
    repo = (
        "HTDemucs" + name[len("htdemucs") :].replace("_", "-", 1) if name.startswith("htdemucs") else f"Demucs-{name}"
    )
    return f"{namespace or 'adefossez'}/{repo}"


def _resolve(spec: ModelSpec, setting: str = "separation.model", fetch: bool = True) -> tuple[str, list[Path], dict]:
    """(label, model files, bag settings), checking every local file's metadata but loading no weights. Without
    `fetch` (the start-up check) a hub or s3:// checkpoint is only looked up, and no files are returned."""
    checkpoint = spec.checkpoint or DEFAULT_PRETRAINED
    what = f"htdemucs separator (pretrained {checkpoint!r})"
    if checkpoint.startswith("s3://") and not fetch:
        check_s3(checkpoint, what, setting)
        return Path(checkpoint).stem, [], {}
    local = local_path(checkpoint)
    label = local.stem
    if not local.exists():
        if _looks_like_path(checkpoint):
            raise _unavailable(checkpoint, "does not exist", setting)
        label = checkpoint.rpartition("/")[2]
        if not fetch:
            check_hf_checkpoint(hub_repo(checkpoint), what, setting, marker=f"{label}.yaml")
            return label, [], {}
        local = Path(resolve_hf_checkpoint(hub_repo(checkpoint), what, f"{setting}.checkpoint"))
    if local.is_file():
        files, bag = [local], {}
    else:
        bags = sorted(local.glob("*.yaml"))
        chosen = [b for b in bags if b.stem == label] or (bags if len(bags) == 1 else [])
        if not chosen:
            raise _unavailable(
                checkpoint, f"needs one bag file <name>.yaml in {str(local)!r}, found {[b.name for b in bags]}", setting
            )
        label = chosen[0].stem
        bag = yaml.safe_load(chosen[0].read_text()) or {}
        files = [local / f"{sig}.safetensors" for sig in bag.get("models", [])]
        absent = [f.name for f in files if not f.is_file()]
        if not files or absent:
            raise _unavailable(checkpoint, f"lacks the model files its bag lists: {absent or 'none listed'}", setting)
    for f in files:
        _metadata(f, checkpoint, setting)
    return label, files, bag


def load_demucs(spec: ModelSpec) -> tuple[str, torch.nn.Module]:
    from demucs.apply import BagOfModels
    from demucs.hf import load_safetensors_model

    label, files, bag = _resolve(spec)
    models = [load_safetensors_model(f) for f in files]
    if len(models) == 1 and not bag:
        return label, models[0].eval()
    return label, BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()


class DemucsSeparator(Separator):
    """Vocals = demucs' 'vocals' source; residual = the sum of the others. Mono is fed as identical
    channels and the stems are averaged back to mono."""

    @classmethod
    def preflight(cls, spec: ModelSpec, setting: str) -> None:
        _resolve(spec, setting, fetch=False)

    @classmethod
    def native_rate(cls, spec: ModelSpec) -> int:
        """The model's rate, from the file metadata when local; published models are all 44.1 kHz."""
        checkpoint = spec.checkpoint or DEFAULT_PRETRAINED
        if not Path(checkpoint).expanduser().exists():
            return PUBLISHED_RATE
        _, files, _ = _resolve(spec)
        kwargs = json.loads(_metadata(files[0], checkpoint, "separation.model").get("kwargs", "{}"))
        return int(kwargs.get("samplerate", PUBLISHED_RATE))

    def __init__(self, spec: ModelSpec, chunk_s: float, overlap_s: float):
        label, model = load_demucs(spec)
        if "vocals" not in model.sources:
            raise ValueError(f"htdemucs separator: model {label!r} has no 'vocals' source (it has {model.sources})")
        self.sample_rate = int(model.samplerate)
        super().__init__(chunk_s, overlap_s)
        self.model_id = f"demucs:{label}"
        self.batch_size = spec.batch_size
        self.device = pick_device(spec.device)
        self.dtype = pick_dtype(spec.dtype, self.device)
        self.model = model.to(self.device)
        self.vocals_index = model.sources.index("vocals")

    def _separate_batch(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        import torch
        from demucs.apply import apply_model

        mix = torch.from_numpy(np.stack(chunks)).to(self.device).unsqueeze(1).expand(-1, self.model.audio_channels, -1)
        with torch.inference_mode():
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
                stems = apply_model(self.model, mix, shifts=0, split=True, overlap=INNER_OVERLAP, device=self.device)
            stems = stems.float().mean(dim=2)  # (batch, sources, samples)
            vocals = stems[:, self.vocals_index]
            return list(torch.stack([vocals, stems.sum(dim=1) - vocals], dim=1).cpu().numpy())
