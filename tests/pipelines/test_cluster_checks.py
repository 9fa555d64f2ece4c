"""Start-up checks on every node: the output must be the one the driver reads, the weights where the actors look.

A job submitted with a working directory (`ray job submit --working-dir`) runs its workers in their own copy of it: a
relative output or checkpoint path there is not the driver's. A child process starts such a Ray (its own, so the
session's Ray is untouched) and asks for a relative output, then a relative codec checkpoint that only the driver has.
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import os, sys, ray
from pipelines.cluster_checks import OutputNotSharedError, check_nodes
from models.checkpoints import CheckpointUnavailableError
from schemas.config import CurateConfig, Resources, layered
ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
         runtime_env={"working_dir": sys.argv[1], "env_vars": {"PYTHONPATH": sys.argv[2]}})
base = {"input": "in", "output": "out"}
try:
    check_nodes(layered(CurateConfig, base), Resources(num_cpus=0.1))
except OutputNotSharedError as exc:
    print("OUTPUT", exc)
codec = {"codec": {"enabled": True, "model": {"checkpoint": "weights"}}, "output": os.path.abspath("shared")}
try:
    check_nodes(layered(CurateConfig, base, codec), Resources(num_cpus=0.1))
except CheckpointUnavailableError as exc:
    print("WEIGHTS", exc)
"""


def test_a_relative_output_or_checkpoint_the_workers_do_not_share_fails_at_start(tmp_path, tiny_codec_dir):
    driver, job = tmp_path / "driver", tmp_path / "job"
    job.mkdir()
    (driver / "weights").mkdir(parents=True)
    for f in tiny_codec_dir.iterdir():  # the driver has the weights; the job's working directory does not
        (driver / "weights" / f.name).write_bytes(f.read_bytes())
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(job), str(ROOT)],
        cwd=driver,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PYTHONPATH": str(ROOT),
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PATH": "/usr/bin:/bin",
        },
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith(("OUTPUT", "WEIGHTS"))]
    assert len(lines) == 2, out.stdout + out.stderr[-3000:]
    assert lines[0].startswith("OUTPUT output out is not shared between nodes: use s3:// or a shared mount")
    assert (
        lines[1].startswith("WEIGHTS s2 codec: checkpoint 'weights' (codec.model.checkpoint)")
        and "(on node " in lines[1]
    )
    assert not list((driver / "shared").rglob("probe-*"))  # no probe left behind


def test_shared_outputs_pass_and_leave_no_probe(ray_session, tmp_path, bucket):
    from pipelines.cluster_checks import check_nodes
    from schemas.config import CurateConfig, Resources

    for output in (str(tmp_path / "out"), f"s3://{bucket}/out"):
        check_nodes(CurateConfig(input="in", output=output), Resources(num_cpus=0.1))
    assert not list(tmp_path.rglob("probe-*"))
    import storage

    assert not list(storage.list_files(f"s3://{bucket}/out"))
