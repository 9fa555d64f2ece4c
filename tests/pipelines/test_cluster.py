"""A real two-node Ray cluster on this machine (ray.cluster_utils: a head that offers no CPU to tasks, a worker node
with two): the run's writers work on the worker node, the driver's peak memory does not grow with the input, and the
shards equal those written without Ray byte for byte. Each run is its own child process with its own cluster
(scripts/bench_cluster.py), so this module never touches the session's Ray."""

import pytest

from scripts.bench_cluster import measure

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPINE = ["separation.enabled=false", "quality.enabled=false", "transcription.enabled=false", "shards.inputs_per_unit=2"]


def test_two_node_cluster_writes_on_the_worker_with_a_flat_driver(tmp_path):
    fig = measure(tmp_path, inputs=3, scale=3, overrides=SPINE)
    small, large = fig["runs"]["cluster_1x"], fig["runs"]["cluster_3x"]
    assert small["summary"]["inputs"] == 3 and large["summary"]["inputs"] == 9 and large["summary"]["segments_kept"] > 0
    assert sorted(small["nodes_cpus"].values()) == [0.0, 2.0]  # a head without CPUs and a worker node
    assert fig["writers_off_the_head"] and large["writer_nodes"]
    assert fig["cluster_equals_sequential"]
    # three times the input, the same driver: it holds summaries and the plan, never audio
    assert fig["driver_peak_rss_mb"][1] - fig["driver_peak_rss_mb"][0] < 40, fig["driver_peak_rss_mb"]
