"""Will the run's actor pools and tasks fit the cluster? Checked at start, per node type, GPUs and autoscaling included.

An actor needs all of its CPUs and GPU fraction on one node; Ray Data's actor pools hold theirs for the whole run,
so pools that leave no room for one decode task (and one encode task where the actors do not encode) wait forever.
A node type is what a live node offers, or what the autoscaler may start (its node groups, up to their max count;
-1 = unbounded). `check_fit` is plain logic; `cluster_node_types` asks Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.config import Resources


class ResourceConfigError(ValueError):
    pass


@dataclass(frozen=True)
class NodeType:
    name: str
    cpus: float
    gpus: float
    count: int  # nodes of this type there are or may be; -1 = unbounded (autoscaling)


@dataclass(frozen=True)
class Demand:
    setting: str  # where the user changes it, e.g. 'quality.resources'
    cpus: float
    gpus: float
    count: int  # actors (or concurrent tasks) that must run at once


def _hosts(node: NodeType, d: Demand) -> bool:
    return node.cpus + 1e-9 >= d.cpus and node.gpus + 1e-9 >= d.gpus


def check_fit(demands: list[Demand], nodes: list[NodeType]) -> None:
    """Raise ResourceConfigError naming the settings when a demand has no node type that can host one of its units,
    or when all demands together exceed what the cluster has or may scale to."""
    for d in demands:
        if not any(_hosts(n, d) for n in nodes):
            offer = ", ".join(f"{n.name}: {n.cpus:g} CPU {n.gpus:g} GPU" for n in nodes) or "no nodes"
            raise ResourceConfigError(
                f"{d.setting}: one unit needs {d.cpus:g} CPU and {d.gpus:g} GPU on one node, but no node type offers that ({offer})"
            )
    if any(n.count < 0 for n in nodes):
        return  # an unbounded node group: the autoscaler can add what is missing
    for kind in ("cpus", "gpus"):
        need = sum(getattr(d, kind) * d.count for d in demands)
        have = sum(getattr(n, kind) * n.count for n in nodes)
        if need > have + 1e-9:
            parts = ", ".join(f"{d.setting} {getattr(d, kind):g} x{d.count}" for d in demands if getattr(d, kind) > 0)
            unit = "CPUs" if kind == "cpus" else "GPUs"
            raise ResourceConfigError(
                f"the run needs {need:g} {unit} at once ({parts}) but the cluster has {have:g}, counting what it can scale to: lower these settings or add nodes"
            )


def pool_demands(pools: dict[str, Resources], decode: Resources, encode_in_tasks: bool) -> list[Demand]:
    """Actor pools at their full size, plus one decode task (and one encode task) that must run beside them."""
    demands = [Demand(setting, r.num_cpus, r.num_gpus, r.concurrency) for setting, r in pools.items()]
    demands.append(Demand("decode.resources", decode.num_cpus, 0.0, 2 if encode_in_tasks else 1))
    return demands


def cluster_node_types() -> list[NodeType]:
    """Live nodes, grouped by what they offer, and the autoscaler's node groups (when the cluster autoscales)."""
    import ray
    import ray._private.state

    live: dict[tuple[float, float], int] = {}
    for node in ray.nodes():
        if node.get("Alive"):
            key = (float(node["Resources"].get("CPU", 0.0)), float(node["Resources"].get("GPU", 0.0)))
            live[key] = live.get(key, 0) + 1
    nodes = [NodeType(f"live node ({c:g} CPU, {g:g} GPU)", c, g, n) for (c, g), n in live.items()]
    config = ray._private.state.state.get_cluster_config()
    for group in getattr(config, "node_group_configs", None) or []:
        if group.max_count == 0 or not group.resources:
            continue
        extra = -1 if group.max_count == -1 else max(0, group.max_count - group.min_count)
        if extra:
            cpus, gpus = float(group.resources.get("CPU", 0)), float(group.resources.get("GPU", 0))
            nodes.append(NodeType(f"autoscaling group {group.name}", cpus, gpus, extra))
    return nodes
