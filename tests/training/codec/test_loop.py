"""The codec training loop: fine-tunes the released format (strict load, released-format save), distils a tiny random
w2v-BERT teacher loaded by transformers, trains the decoder only when asked, resumes exactly after SIGKILL, and says
what is wrong with a config in one line before writing anything."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from jobs import codec as codec_job
from jobs import codec_train
from models.codec.checkpoint import RandomWeightsWarning, load_codec, read_state
from tests.tiny_models import build_w2vbert
from tests.training.codec.tiny import tiny_codec_config, write_shard
from training import checkpoint
from training.codec.loop import train

GOLDEN = Path(__file__).parents[2] / "data" / "golden" / "codec" / "reduced"
LOSSES = ("mel", "adversarial", "feature_matching", "commitment", "codebook", "semantic")


@pytest.fixture(autouse=True)
def quiet_random_weights():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        yield


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    return write_shard(tmp_path_factory.mktemp("codec_shard"))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A tiny random Wav2Vec2BertModel (2 layers, width 32) saved with save_pretrained."""
    return build_w2vbert(tmp_path_factory.mktemp("w2vbert"))


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_fine_tuning_the_released_format_distils_the_teacher_and_saves_a_codec_that_loads_strictly(
    tmp_path, shard, teacher
):
    out = tmp_path / "out"
    config = tiny_codec_config([shard], out, f"codec.init={GOLDEN}", "runtime.max_steps=2", teacher=teacher)
    summary = train(config)

    lines = metrics(out)
    assert [m["step"] for m in lines] == [1, 2]
    for line in lines:
        assert all(line[k] > 0 for k in LOSSES), line  # every component, the teacher's included
        assert len(line["codebook_perplexity"]) == 10 and line["steps_per_s"] > 0
    uri = checkpoint.latest(str(out))
    assert checkpoint.read_state(uri)["step"] == 2
    generator, discriminators = checkpoint.load_full(uri, "generator."), checkpoint.load_full(uri, "discriminators.")
    assert any(k.startswith("semantic_head.") for k in generator) and any(k.startswith("mpd.") for k in discriminators)
    assert checkpoint.load_full(uri, "optim.generator.state.") and checkpoint.load_full(
        uri, "optim.discriminators.state."
    )  # both AdamW

    saved = out / "codec" / "codec.pth"
    assert summary["codec"] == str(saved)
    assert list(read_state(saved)) == list(read_state(GOLDEN / "codec.pth"))  # the released layout and key order
    tuned, golden = load_codec(saved), load_codec(GOLDEN / "codec.pth")  # strict: raises on any other key
    changed = [k for k, v in golden.state_dict().items() if not torch.equal(v, tuned.state_dict()[k])]
    assert any(k.startswith("encoder.") for k in changed) and any(k.startswith("decoder.") for k in changed)

    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["before"]["step"] == 0 and evaluation["after"]["step"] == 2
    for name in ("mel_distance", "stoi", "si_sdr"):
        assert isinstance(evaluation["after"][name], float)
    assert sorted(p.parent.name for p in (out / "eval").glob("*/*.wav")) == ["after", "before", "reference"]


def test_decoder_only_fine_tuning_keeps_the_encoder_and_quantizer(tmp_path, shard):
    out = tmp_path / "out"
    train(tiny_codec_config([shard], out, f"codec.init={GOLDEN}", "codec.train=decoder", "runtime.max_steps=1"))
    tuned, golden = load_codec(out / "codec" / "codec.pth"), load_codec(GOLDEN / "codec.pth")
    for key, value in golden.state_dict().items():
        same = torch.equal(value, tuned.state_dict()[key])
        assert same == (not key.startswith("decoder.")), key


def _s2_codec_train(config: Path) -> None:
    """`s2 codec train --config CONFIG` as jobs/cli.py builds it."""
    parser = argparse.ArgumentParser()
    codec_job.register(parser.add_subparsers())
    args = parser.parse_args(["codec", "train", "--config", str(config)])
    sys.exit(args.func(args))


def test_a_run_killed_with_sigkill_and_restarted_continues_exactly(tmp_path, shard):
    steps = 6
    common = (f"runtime.max_steps={steps}", "runtime.ckpt_every=2", "loss.quantizer_dropout=0.5")
    train(tiny_codec_config([shard], tmp_path / "straight", *common))
    expected = metrics(tmp_path / "straight")

    out = tmp_path / "killed"
    config = tmp_path / "codec.yaml"
    config.write_text(yaml.safe_dump(tiny_codec_config([shard], out, *common).model_dump(mode="json")))
    child = multiprocessing.get_context("fork").Process(target=_s2_codec_train, args=(config,))
    child.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.is_alive():
        if (out / "checkpoints" / "latest").exists() and len((out / "metrics.jsonl").read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode == -signal.SIGKILL
    assert len(metrics(out)) < steps and not (out / "codec").exists()

    assert codec_train.run(argparse.Namespace(config=str(config), init=None, overrides=[])) == 0
    resumed = metrics(out)
    assert [m["step"] for m in resumed] == list(range(1, steps + 1))
    for want, got in zip(expected, resumed):
        got, want = dict(got), dict(want)
        got.pop("steps_per_s"), want.pop("steps_per_s")
        assert got == want, want["step"]
    straight, killed = (
        read_state(tmp_path / "straight" / "codec" / "codec.pth"),
        read_state(out / "codec" / "codec.pth"),
    )
    assert all(torch.equal(straight[k], killed[k]) for k in straight)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.batch_size=0", "data.batch_size"),
        ("loss.mel_bins=[5]", "loss.mel_bins"),
        ("codec.train=encoder", "codec.train"),
        ("data.sources=[]", "data.sources"),
    ],
)
def test_a_bad_setting_fails_at_start_in_one_line_naming_it(tmp_path, shard, capsys, override, named):
    config = tmp_path / "codec.yaml"
    config.write_text(yaml.safe_dump(tiny_codec_config([shard], tmp_path / "out").model_dump(mode="json")))
    assert codec_train.run(argparse.Namespace(config=str(config), init=None, overrides=[override])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err
    assert not (tmp_path / "out").exists()


def test_an_unusable_start_stops_in_one_line_before_training(tmp_path, shard, teacher, capsys):
    config = tmp_path / "codec.yaml"
    config.write_text(yaml.safe_dump(tiny_codec_config([shard], tmp_path / "out").model_dump(mode="json")))
    cases = [
        ([f"codec.init={tmp_path / 'nowhere'}"], "codec.init"),
        ([f"semantic.teacher={teacher}", "semantic.enabled=true", "semantic.layer=3"], "semantic.layer"),
        ([f"data.sources={json.dumps([str(config)])}"], "data.sources"),
    ]
    for overrides, named in cases:
        assert codec_train.run(argparse.Namespace(config=str(config), init=None, overrides=overrides)) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' loading bar, when it shows
        assert err.startswith("cannot train the codec: ") and named in err, err
    assert not (tmp_path / "out").exists()
