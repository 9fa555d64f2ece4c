"""The trainer on 2 ranks (gloo on CPU, FSDP2), launched as torchrun launches it: `s2 train` in two processes with
RANK, WORLD_SIZE and MASTER_ADDR/PORT. A 2-rank run killed with SIGKILL and resumed gives the losses of an
uninterrupted run, its sharded checkpoint resumes on 1 rank with the same losses, and `s2 export` of it generates
what the live model generates."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.training.tiny import tiny_config
from training.trainer import train

ROOT = Path(__file__).resolve().parents[2]
COMPARED = ("loss", "loss_slow", "loss_fast", "grad_norm")


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def launch(config, tmp_path: Path, ranks: int = 2) -> list[subprocess.Popen]:
    """`python -m jobs.cli train --config` once per rank, with the environment torchrun gives its workers."""
    path = tmp_path / f"train-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = {**os.environ, "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", "train", "--config", str(path)],
            env={**common, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(ranks)},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for r in range(ranks)
    ]


def finish(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]


def assert_same_losses(got: list[dict], want: list[dict]) -> None:
    assert [m["step"] for m in got] == [m["step"] for m in want]
    for a, b in zip(want, got):
        assert a["tokens"] == b["tokens"] and a["samples"] == b["samples"], a["step"]  # the same global batch
        for key in COMPARED:
            assert b[key] == pytest.approx(a[key], rel=1e-5), (a["step"], key)


def test_two_ranks_killed_with_sigkill_resume_on_two_and_then_on_one_rank_with_the_losses_of_one_run(tmp_path, shards):
    steps = ("runtime.max_steps=8", "runtime.ckpt_every=2")
    # one process reading the 2 ranks' streams (2 loader workers, 2 micro-batches a step): the uninterrupted run
    train(tiny_config(shards, tmp_path / "one", *steps, "data.num_workers=2", "optimizer.accumulation=2"))
    expected = metrics(tmp_path / "one")

    out = tmp_path / "two"
    two_ranks = tiny_config(shards, out, *steps, "data.num_workers=0")
    procs = launch(two_ranks, tmp_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and all(p.poll() is None for p in procs):
        done = (out / "metrics.jsonl").is_file() and len((out / "metrics.jsonl").read_text().splitlines()) >= 3
        if done and (out / "checkpoints" / "latest").is_file():
            break
        time.sleep(0.02)
    for p in procs:  # our own children, by pid: a lost node takes both ranks down
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert [p.returncode for p in procs] == [-signal.SIGKILL] * 2
    killed_at = int((out / "checkpoints" / "latest").read_text().removeprefix("step-"))
    assert 2 <= killed_at < 8 and not (out / "model").exists()

    finish(launch(tiny_config(shards, out, "runtime.max_steps=6", "runtime.ckpt_every=2"), tmp_path))
    assert_same_losses(metrics(out), expected[:6])

    # the checkpoint of step 6, written by 2 ranks, on 1 rank: DCP reshards, the streams move to loader workers
    one_rank = tiny_config(shards, out, *steps, "data.num_workers=2", "optimizer.accumulation=2")
    train(one_rank)
    assert_same_losses(metrics(out), expected)
    assert (out / "model" / "config.json").is_file()

    # `s2 export` of the 2 ranks' step-6 checkpoint, offline, generates what the model resumed from it generates
    exported_codes, live_codes = export_and_generate(out / "checkpoints" / "step-00000006", one_rank, tmp_path)
    assert sum(c.shape[1] for c in exported_codes) > 0
    assert all(torch.equal(a, b) for a, b in zip(exported_codes, live_codes, strict=True))


def export_and_generate(uri: Path, config, tmp_path: Path) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    from jobs.cli import main as s2
    from models.dual_ar.checkpoint import from_s2_checkpoint
    from models.dual_ar.generate import generate
    from models.dual_ar.prompt import build_prompt
    from models.dual_ar.sampling import SamplingParams
    from models.dual_ar.tokens import TokenIds
    from training.trainer import World, prepare, resume

    assert s2(["export", "--checkpoint", str(uri), "--out", str(tmp_path / "exported")]) == 0
    exported, tokenizer = from_s2_checkpoint(tmp_path / "exported")
    run, _ = prepare(config, World(0, 1, torch.device("cpu")))
    resume(run, config, World(0, 1, torch.device("cpu")), str(uri))
    live = run.model.eval()
    with torch.no_grad():
        for p in live.parameters():  # the released format is bfloat16
            p.copy_(p.bfloat16().float())
    ids = TokenIds.from_tokenizer(tokenizer, exported.config.codebook_size)
    prompt = build_prompt(tokenizer, ids, exported.config.num_codebooks, "<|speaker:0|>the quick brown fox").tokens
    sampling = SamplingParams(temperature=1.0, top_p=1.0, top_k=10**6)  # the tiny model mostly says <|im_end|>
    exported_codes, live_codes = (
        generate(m, [prompt] * 6, im_end_id=ids.im_end, max_new_tokens=8, sampling=sampling, seed=0)
        for m in (exported, live)
    )
    return exported_codes, live_codes


def test_bf16_lora_on_two_fsdp_ranks_trains_the_adapters_and_exports_them_merged(tmp_path, shards, tiny_model_dir):
    from models.dual_ar.checkpoint import from_s2_checkpoint, read_weights

    out = tmp_path / "out"
    config = tiny_config(
        shards, out, "model.init=s2", f"model.path={tiny_model_dir}", "lora.enabled=true", "lora.r=2",
        "runtime.dtype=bfloat16", "runtime.max_steps=3", "runtime.async_checkpoint=true", "data.num_workers=0",
        "optimizer.lr_text=5e-2", "optimizer.lr_audio=5e-2",
    )  # fmt: skip
    finish(launch(config, tmp_path))
    lines = metrics(out)
    assert [m["step"] for m in lines] == [1, 2, 3] and all(torch.isfinite(torch.tensor(m["loss"])) for m in lines)
    before, after = read_weights(tiny_model_dir), read_weights(out / "model")
    assert torch.equal(before["embeddings.weight"], after["embeddings.weight"])  # frozen
    assert not torch.equal(before["layers.0.feed_forward.w2.weight"], after["layers.0.feed_forward.w2.weight"])
    from_s2_checkpoint(out / "model")
