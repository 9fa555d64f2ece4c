"""Models larger than one host's memory on many ranks: built on the meta device (no storage), sharded with FSDP2's
`fully_shard`, then materialised so that each rank allocates and fills only its own shards.

    with torch.device("meta"): model = Build(config)
    fully_shard(block) ...; fully_shard(model)
    materialize(model, device, rows)              # each rank reads its own rows of every tensor (e.g. safetensors slices)
    materialize_from_rank0(model, device, state)  # or: rank 0 holds the full state, broadcast into the shards

Generic over any nn.Module (the Dual-AR trainer and the codec trainer's generator and discriminators alike).
FSDP2 shards every parameter on dim 0 in torch.chunk's layout: rank r holds rows [r*c, min((r+1)*c, n)) with
c = ceil(n / world). Tensors that are not DTensors (a world of one without FSDP, buffers) are read whole.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

# rows(name, start, stop) -> rows start..stop (dim 0) of the full tensor `name`, any dtype (copied into place)
RowReader = Callable[[str, int, int], Tensor]


class ShardingError(RuntimeError):
    """A tensor whose layout this module does not materialise; the message is one line naming it."""


def shard_rows(name: str, tensor: Tensor) -> tuple[int, int]:
    """Rows [start, stop) of the full tensor that this rank holds of `tensor` (all of them unless a DTensor)."""
    from torch.distributed.tensor import DTensor, Replicate, Shard

    if not isinstance(tensor, DTensor):
        return 0, tensor.shape[0] if tensor.ndim else 0
    if tensor.device_mesh.ndim != 1 or not isinstance(tensor.placements[0], (Shard, Replicate)):
        raise ShardingError(f"{name}: placements {tensor.placements} (only a 1-D mesh, Shard(0) or Replicate)")
    n = tensor.shape[0]
    placement = tensor.placements[0]
    if isinstance(placement, Replicate):
        return 0, n
    if placement.dim != 0:
        raise ShardingError(f"{name}: sharded on dim {placement.dim} (only dim 0)")
    world, rank = tensor.device_mesh.size(), tensor.device_mesh.get_local_rank()
    chunk = -(-n // world)
    start = min(rank * chunk, n)
    stop = min(start + chunk, n)
    if tensor.to_local().shape[0] != stop - start:
        raise ShardingError(f"{name}: local shard of {tensor.to_local().shape[0]} rows, expected {stop - start}")
    return start, stop


def _local(t: Tensor) -> Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def _tensors(module: nn.Module) -> list[tuple[str, Tensor]]:
    return [*module.named_parameters(), *module.named_buffers()]


@torch.no_grad()
def _allocate(module: nn.Module, device: torch.device) -> dict[str, Tensor]:
    """Storage on `device` for every tensor of `module`; returns copies of the tensors that held values before
    (buffers computed at construction, such as a loss's weights), which to_empty would leave uninitialised."""
    kept = {n: _local(t).detach().clone() for n, t in _tensors(module) if not t.is_meta}
    module.to_empty(device=device)
    return kept


@torch.no_grad()
def _restore(module: nn.Module, kept: dict[str, Tensor]) -> None:
    for name, tensor in _tensors(module):
        if name in kept:
            _local(tensor).copy_(kept[name])


@torch.no_grad()
def materialize(module: nn.Module, device: torch.device, rows: RowReader) -> None:
    """Give a meta-built (and possibly fully_shard-ed) module storage on `device` and fill every tensor that was on
    the meta device with this rank's rows from `rows`; tensors that already held values keep them."""
    kept = _allocate(module, device)
    for name, tensor in _tensors(module):
        if name in kept:
            continue
        start, stop = shard_rows(name, tensor)
        if tensor.ndim == 0:
            _local(tensor).copy_(rows(name, 0, 0))
        elif stop > start:
            _local(tensor).copy_(rows(name, start, stop))
    _restore(module, kept)


@torch.no_grad()
def materialize_from_rank0(module: nn.Module, device: torch.device, state: dict[str, Tensor] | None) -> None:
    """Like `materialize`, the values coming from rank 0's full state dict (`state`; None on the other ranks),
    broadcast tensor by tensor into each rank's shards (torch.distributed.checkpoint's broadcast_from_rank0): no
    rank but rank 0 ever holds the full set."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    kept = _allocate(module, device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
    set_model_state_dict(module, state or {}, options=options)
    _restore(module, kept)
