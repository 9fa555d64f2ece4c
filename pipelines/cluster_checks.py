"""What the driver cannot see for itself, checked at start on every node that may host the run's actors: that the
output the writers write there is the output the driver reads (a local path on a multi-node cluster is each node's own
disk: the driver would wait for units forever), and that every model's weights are where the actors will look (a
relative or node-local checkpoint path found on the driver only).

One task per node, pinned to it, with a writer's resources: it writes a probe under the output and runs every model's
preflight there; the driver must then see each probe. The probes are removed again.
"""

from __future__ import annotations

import socket
import uuid

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import storage
from models import registry
from schemas.config import CurateConfig, Resources

PROBE_DIR = "_run"


class OutputNotSharedError(RuntimeError):
    """The output a worker writes is not the output the driver reads."""


def _probe(output: str, name: str, specs: list) -> str:
    """On one node: write the probe, check every model's weights are findable here. Returns the node's host name."""
    for setting, family, spec in specs:
        registry.preflight(family, spec, setting)
    storage.write_text(storage.join(output, PROBE_DIR, name), socket.gethostname())
    return socket.gethostname()


def check_nodes(cfg: CurateConfig, resources: Resources) -> None:
    """Raise OutputNotSharedError, or the model's own start-up error naming the node, unless every node that can host
    an actor of `resources` writes where the driver reads and finds every model's weights."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0.0) + 1e-9 >= resources.num_cpus]
    token = uuid.uuid4().hex[:12]
    task = ray.remote(_probe)
    refs = {
        f"probe-{token}-{i}": task.options(
            num_cpus=resources.num_cpus,
            max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
        ).remote(cfg.output, f"probe-{token}-{i}", cfg.model_specs())
        for i, n in enumerate(nodes)
    }
    hosts = {}
    try:
        for name, ref in refs.items():
            try:
                hosts[name] = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if exc.cause is not None else exc
                raise type(cause)(f"{cause} (on node {nodes[list(refs).index(name)]['NodeManagerAddress']})") from None
        for name, host in hosts.items():
            if not storage.exists(storage.join(cfg.output, PROBE_DIR, name)):
                raise OutputNotSharedError(
                    f"output {cfg.output} is not shared between nodes: use s3:// or a shared mount (a writer on "
                    f"{host} wrote a probe there that the driver on {socket.gethostname()} cannot see)"
                )
    finally:
        for name in hosts:
            uri = storage.join(cfg.output, PROBE_DIR, name)
            if storage.exists(uri):
                storage.delete(uri)
