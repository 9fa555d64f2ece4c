"""The trainer: it learns, resumes exactly after SIGKILL, splits learning rates, counts FLOPs, trains LoRA,
checkpoints to S3, and says what is wrong with a config or a checkpoint in one line."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from jobs import train as train_job
from schemas.training import OptimizerConfig
from tests.training.tiny import N, make_samples, tiny_config, write_shards
from training.trainer import lr_factor, param_groups, train

COMPARED = ("loss", "loss_slow", "loss_fast", "fast_ce", "grad_norm", "lr_text", "tokens", "samples")


def _s2_train(config: Path) -> None:
    """`s2 train --config CONFIG` as jobs/cli.py builds it: the subcommand that register() adds."""
    parser = argparse.ArgumentParser()
    train_job.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--config", str(config)])
    sys.exit(args.func(args))


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def write_config(path: Path, config) -> Path:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    return path


def test_a_tiny_model_overfits_a_fixed_batch(tmp_path):
    index = write_shards(tmp_path / "data", make_samples(1, frames=(8, 9)), per_shard=1)
    config = tiny_config(
        index, tmp_path / "out", "runtime.max_steps=40", "runtime.ckpt_every=1000", "optimizer.lr_text=1e-2",
        "optimizer.lr_audio=1e-2", "optimizer.warmup_steps=5",
    )  # fmt: skip
    train(config)
    lines = metrics(tmp_path / "out")
    assert len(lines) == 40 and all(line["samples"] == 1 for line in lines)
    assert lines[-1]["loss"] < lines[0]["loss"] / 10
    assert lines[-1]["loss_slow"] < lines[0]["loss_slow"] / 10 and lines[-1]["loss_fast"] < lines[0]["loss_fast"] / 10


def test_a_run_killed_with_sigkill_and_restarted_continues_with_the_same_losses(tmp_path, shards):
    steps = 24
    straight = tiny_config(shards, tmp_path / "straight", f"runtime.max_steps={steps}", "runtime.ckpt_every=3")
    train(straight)
    expected = metrics(tmp_path / "straight")

    out = tmp_path / "killed"  # the same run with its loader in a worker process (the same single stream)
    killed = tiny_config(shards, out, f"runtime.max_steps={steps}", "runtime.ckpt_every=3", "data.num_workers=1")
    config = write_config(tmp_path / "train.yaml", killed)
    # `s2 train --config train.yaml` in a child process (forked: the imports are done), killed by its PID
    child = multiprocessing.get_context("fork").Process(target=_s2_train, args=(config,))
    child.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.is_alive():
        if (out / "checkpoints" / "latest").exists() and len((out / "metrics.jsonl").read_text().splitlines()) >= 5:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    assert len((out / "metrics.jsonl").read_text().splitlines()) < steps and not (out / "model").exists()

    assert train_job.run(argparse.Namespace(config=str(config), overrides=[])) == 0
    resumed = metrics(out)
    assert [m["step"] for m in resumed] == list(range(1, steps + 1))
    for want, got in zip(expected, resumed):
        assert {k: got[k] for k in COMPARED} == {k: want[k] for k in COMPARED}, want["step"]
    assert (out / "model" / "config.json").is_file()


def test_learning_rates_warm_up_hold_and_decay_per_group(tiny_model):
    c = OptimizerConfig(lr_text=1e-4, lr_audio=1e-3, warmup_steps=4, stable_steps=3, decay_steps=4, min_lr_ratio=0.1)
    factors = [round(lr_factor(s, c), 6) for s in range(13)]
    assert factors == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 0.775, 0.55, 0.325, 0.1, 0.1, 0.1]
    groups = {g["name"]: g for g in param_groups(tiny_model, c)}
    assert set(groups) == {"text", "text_no_decay", "audio", "audio_no_decay"}
    names = {id(p): n for n, p in tiny_model.named_parameters()}
    audio = {names[id(p)] for p in groups["audio"]["params"] + groups["audio_no_decay"]["params"]}
    assert "codebook_embeddings.weight" in audio and "fast_output.weight" in audio
    assert not any(n.startswith(("layers.", "embeddings")) for n in audio)
    assert groups["audio"]["peak_lr"] == 1e-3 and groups["text"]["peak_lr"] == 1e-4
    assert groups["text_no_decay"]["weight_decay"] == 0.0 and groups["text"]["weight_decay"] == 0.1
    assert {names[id(p)] for p in groups["text_no_decay"]["params"]} >= {"norm.weight", "layers.0.ffn_norm.weight"}


def test_the_flop_count_is_the_matmuls_torch_counts(tiny_model):
    from torch.utils.flop_counter import FlopCounterMode

    from schemas.training import LossConfig
    from training.flops import step_flops
    from training.losses import DualARLoss, codebook_weights

    c, T = tiny_model.config, 40
    inputs = torch.zeros(1, N + 1, T, dtype=torch.long)
    labels = torch.full((1, N + 1, T), -100)
    labels[0, 0, 25:35] = torch.arange(10) + c.semantic_begin_id  # 10 frames learned, then 3 text tokens
    labels[0, 1:, 25:35] = 1
    labels[0, 0, 35:38] = 7
    module = DualARLoss(tiny_model, codebook_weights(LossConfig(), N), 64)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(inputs, labels, None)
    counted = counter.get_flop_counts()["Global"]
    mm, bmm = (sum(v for k, v in counted.items() if str(k) == f"aten.{op}") for op in ("mm", "bmm"))
    s = c.slow
    slow_attention = s.n_layer * 4 * s.n_head * s.head_dim * T * (T + 1) // 2  # a CPU kernel torch does not count
    causal_fast_attention = bmm * (N * (N + 1) // 2) / N**2  # the fast AR's attention is written out, unmasked
    assert step_flops(c, [T], 13, 10) / 3 == mm + causal_fast_attention + slow_attention


def test_lora_trains_only_the_adapters_and_the_export_merges_them(tmp_path, shards, tiny_model_dir):
    from models.dual_ar.checkpoint import from_s2_checkpoint, read_weights
    from training.checkpoint import latest, load_full

    config = tiny_config(
        shards, tmp_path / "out", "model.init=s2", f"model.path={tiny_model_dir}", "lora.enabled=true", "lora.r=2",
        "optimizer.lr_text=5e-2", "optimizer.lr_audio=5e-2",
    )  # fmt: skip
    train(config)
    saved = load_full(latest(str(tmp_path / "out")), "model.model.")
    assert saved and all(".lora_" in k for k in saved)
    assert any(k.startswith("fast_layers.") for k in saved)  # the fast AR's MLPs too
    before, after = read_weights(tiny_model_dir), read_weights(tmp_path / "out" / "model")
    assert torch.equal(before["layers.0.attention.wqkv.weight"], after["layers.0.attention.wqkv.weight"])
    assert torch.equal(before["embeddings.weight"], after["embeddings.weight"])
    assert not torch.equal(before["layers.0.feed_forward.w2.weight"], after["layers.0.feed_forward.w2.weight"])
    from_s2_checkpoint(tmp_path / "out" / "model")  # the released format, loaded strictly


def test_lora_merge_gives_the_adapted_model(tiny_model):
    from schemas.training import LoraConfig
    from training.lora import apply_lora, merged_state_dict

    config = LoraConfig(enabled=True, r=2, targets=["w1", "w2", "w3", "wqkv"])
    inputs = torch.randint(0, 250, (1, N + 1, 12))
    inputs[:, 1:] = 0
    adapted = apply_lora(tiny_model, config).eval()
    with torch.no_grad():
        for name, p in adapted.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)  # B starts at zero: make the adapters do something
        want = adapted(inputs).token_logits
    from models.dual_ar.model import DualARTransformer

    plain = DualARTransformer(tiny_model.config).eval()
    plain.load_state_dict(merged_state_dict(adapted.state_dict(), config))
    with torch.no_grad():
        torch.testing.assert_close(plain(inputs).token_logits, want, atol=1e-5, rtol=1e-5)


def test_checkpoints_metrics_and_the_model_go_to_s3_and_a_run_resumes_from_there(tmp_path, shards, bucket):
    import boto3

    out = f"s3://{bucket}/run"
    train(tiny_config(shards, out, "runtime.max_steps=2"))
    train(tiny_config(shards, out, "runtime.max_steps=4"))  # resumes at step 2
    train(tiny_config(shards, tmp_path / "straight", "runtime.max_steps=4"))
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket)["Contents"]}
    assert {"run/metrics.jsonl", "run/checkpoints/latest", "run/checkpoints/step-00000004/state.pt"} <= keys
    assert "run/model/config.json" in keys and "run/model/model.safetensors.index.json" in keys
    remote = boto3.client("s3").get_object(Bucket=bucket, Key="run/metrics.jsonl")["Body"].read().decode()
    lines = [json.loads(line) for line in remote.splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4]
    assert [m["loss"] for m in lines] == [m["loss"] for m in metrics(tmp_path / "straight")]


def run_cli(tmp_path, capsys, config, *overrides: str) -> tuple[int, str]:
    path = write_config(tmp_path / "bad.yaml", config) if not isinstance(config, Path) else config
    code = train_job.run(argparse.Namespace(config=str(path), overrides=list(overrides)))
    return code, capsys.readouterr().err


def test_a_config_error_is_one_line(tmp_path, capsys, shards):
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump({"data": {"index": str(shards), "seq_lenn": 10}, "runtime": {"max_steps": 0}}))
    code, err = run_cli(tmp_path, capsys, path)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("configuration error: data.seq_lenn: Extra inputs are not permitted; runtime.max_steps:")

    code, err = run_cli(tmp_path, capsys, tiny_config(shards, tmp_path / "o"), "data.seq_len=9000")
    assert (code, err) == (2, "cannot train: data.seq_len 9000 exceeds the model's max_seq_len 4096\n")

    code, err = run_cli(
        tmp_path, capsys, tiny_config(shards, tmp_path / "o", "model.init=s2", f"model.path={tmp_path}")
    )
    assert (
        code == 2
        and err
        == f"cannot train: {tmp_path}/config.json: no such file (a released S2 checkpoint folder holds config.json)\n"
    )


def test_a_checkpoint_error_is_one_line(tmp_path, capsys, shards):
    config = tiny_config(shards, tmp_path / "out", "runtime.max_steps=2")
    train(config)
    code, err = run_cli(tmp_path, capsys, config, "data.seq_len=200")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(
        f"cannot train: checkpoint {tmp_path}/out/checkpoints/step-00000002 was written with data.seq_len=160, this run has data.seq_len=200: set it back"
    )

    (tmp_path / "out" / "checkpoints" / "step-00000002" / "state.pt").write_bytes(b"not a checkpoint")
    code, err = run_cli(tmp_path, capsys, config)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"cannot train: checkpoint {tmp_path}/out/checkpoints/step-00000002/state.pt is unreadable:")


def test_the_demo_config_is_valid_and_tiny():
    from jobs.config import read_yaml
    from schemas.config import layered
    from schemas.training import TrainConfig

    config = layered(TrainConfig, read_yaml(Path(train_job.__file__).parent / "configs" / "train_demo.yaml"))
    assert config.model.init == "tiny" and config.runtime.dtype == "float32" and config.runtime.max_steps >= 200


def test_a_rank_that_resumed_another_step_than_rank_0_stops_the_run(tmp_path, shards):
    from training.checkpoint import latest
    from training.trainer import TrainError, World, prepare, resume

    class OtherRanksAhead(World):  # what rank 0 would gather from a rank that read a newer checkpoint
        def gather(self, obj):
            return [obj, obj + 2]

    config = tiny_config(shards, tmp_path / "out", "runtime.max_steps=2")
    train(config)
    world = OtherRanksAhead(0, 1, torch.device("cpu"))
    run, _ = prepare(config, world)
    with pytest.raises(TrainError, match=r"ranks resumed different steps \[2, 4\] from .*step-00000002"):
        resume(run, config, world, latest(str(tmp_path / "out")))
