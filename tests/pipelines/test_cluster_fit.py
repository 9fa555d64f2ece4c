"""The start-up resource check, per node type: GPU fractions and CPUs on one node, totals over what the cluster has
or may scale to."""

import pytest

from pipelines.cluster_fit import Demand, NodeType, ResourceConfigError, check_fit, pool_demands
from schemas.config import Resources

CPU_NODE = NodeType("cpu", 16, 0, 2)
GPU_NODE = NodeType("gpu", 8, 1, 1)


def test_an_actor_needing_a_gpu_fraction_fits_only_where_a_gpu_is():
    check_fit([Demand("quality.resources", 1, 0.25, 4)], [CPU_NODE, GPU_NODE])
    with pytest.raises(
        ResourceConfigError, match=r"^quality\.resources: one unit needs 1 CPU and 0\.25 GPU on one node"
    ):
        check_fit([Demand("quality.resources", 1, 0.25, 1)], [CPU_NODE])


def test_totals_count_every_node_and_name_the_settings():
    demands = pool_demands(
        {"transcription.resources": Resources(num_cpus=1, num_gpus=0.5, concurrency=3)}, Resources(num_cpus=1), False
    )
    with pytest.raises(
        ResourceConfigError, match=r"needs 1\.5 GPUs at once \(transcription\.resources 0\.5 x3\) but the cluster has 1"
    ):
        check_fit(demands, [CPU_NODE, GPU_NODE])
    check_fit(demands, [CPU_NODE, NodeType("gpu", 8, 1, 2)])


def test_an_autoscaling_group_without_bound_makes_room():
    demands = [Demand("separation.resources", 4, 1, 64)]
    check_fit(demands, [CPU_NODE, NodeType("autoscaling group gpu", 8, 1, -1)])
    with pytest.raises(ResourceConfigError, match="at once"):  # CPUs run out first here: 256 wanted, 56 at most
        check_fit(demands, [CPU_NODE, NodeType("autoscaling group gpu", 8, 1, 3)])


def test_a_head_without_cpus_hosts_nothing():
    head = NodeType("head", 0, 0, 1)
    with pytest.raises(ResourceConfigError, match=r"ray\.writers: one unit needs 0\.1 CPU"):
        check_fit([Demand("ray.writers", 0.1, 0, 1)], [head])
