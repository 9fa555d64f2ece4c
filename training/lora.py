"""LoRA adapters (PEFT) on the Dual-AR model's Linear layers, and their merge into plain weights for export.

`peft.inject_adapter_in_model` adds the adapters in place (the model stays a DualARTransformer, its blocks where
FSDP and activation checkpointing expect them) and freezes everything else. An adapted layer `X` holds
`X.base_layer.weight`, `X.lora_A.default.weight` [r, in] and `X.lora_B.default.weight` [out, r]; merged, its
weight is base + scaling * B @ A with scaling alpha / sqrt(r) (rsLoRA) or alpha / r.
"""

from __future__ import annotations

import hashlib
import math

from torch import Tensor, nn

from schemas.training import LoraConfig

BASE, A, B = ".base_layer.", ".lora_A.default.weight", ".lora_B.default.weight"


def apply_lora(model: nn.Module, config: LoraConfig) -> nn.Module:
    from peft import LoraConfig as PeftLoraConfig
    from peft import inject_adapter_in_model

    peft_config = PeftLoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.targets),
        use_rslora=config.rslora,
    )
    try:
        return inject_adapter_in_model(peft_config, model)
    except ValueError as exc:  # no module matched the targets
        raise ValueError(f"lora.targets {config.targets}: {str(exc).splitlines()[0]}") from None


def scaling(config: LoraConfig) -> float:
    return config.alpha / (math.sqrt(config.r) if config.rslora else config.r)


def merged_state_dict(state: dict[str, Tensor], config: LoraConfig) -> dict[str, Tensor]:
    """A LoRA model's full state dict -> the plain model's, every adapter folded into its layer's weight."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if ".lora_" in key:
            continue
        if BASE not in key:
            out[key] = value
            continue
        layer, _, param = key.partition(BASE)
        if param == "weight":
            value = value + scaling(config) * (state[layer + B].float() @ state[layer + A].float()).to(value.dtype)
        out[f"{layer}.{param}"] = value
    return out


def base_name(name: str) -> str:
    """An adapted model's parameter name -> the plain model's ("X.base_layer.weight" -> "X.weight")."""
    return name.replace(BASE, ".")


def is_adapter(name: str) -> bool:
    return ".lora_" in name


def initial_adapter(name: str, shape: tuple[int, ...], seed: int) -> Tensor:
    """A new adapter's starting value, the same on every rank: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming
    uniform with a = sqrt(5)) from a generator seeded by `seed` and the name, B = 0 (the adapted layer starts as
    the base layer)."""
    import torch

    if ".lora_B." in name:
        return torch.zeros(shape)
    generator = torch.Generator().manual_seed(int(hashlib.sha256(f"{seed}/{name}".encode()).hexdigest()[:15], 16))
    bound = 1.0 / math.sqrt(shape[-1])
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound
