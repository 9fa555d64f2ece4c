"""Errors that name the right remedy: every `s2` command is started the wrong way, and each remedy its one-line error
prescribes is parsed against the command that raised it. A remedy is a backquoted span starting with `--` (a flag
of the raising command, or `--set KEY=VALUE`, whose KEY must be a leaf of that command's configuration) or with
`s2 ` (another command, parsed by the CLI). Nothing is written before such an error."""

from __future__ import annotations

import io
import json
import re
import shlex
import tarfile
from pathlib import Path

import pytest

from jobs.cli import build_parser, main
from schemas.config import CurateConfig, TokenizeConfig, apply_override
from schemas.grpo import GRPOConfig
from schemas.rewards import RewardsConfig
from schemas.training import TrainConfig

# the configuration each command's --set edits
SET_SCHEMAS = {
    "curate": CurateConfig,
    "calibrate-quality": CurateConfig,
    "tokenize": TokenizeConfig,
    "train": TrainConfig,
    "grpo": GRPOConfig,
    "serve-rewards": RewardsConfig,
}
REMEDY = re.compile(r"`((?:--|s2 )[^`]+)`")


def uncoded_curation(root: Path) -> Path:
    """A curation output whose shard holds KEY.flac + KEY.json only (curated with the codec off)."""
    (root / "shards").mkdir(parents=True)
    with tarfile.open(root / "shards" / "shard-000000-000.tar", "w") as tar:
        for name, data in (("0123456789abcdef_00000.flac", b"fLaC"), ("0123456789abcdef_00000.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    index = {"shardlist": [{"url": "shards/shard-000000-000.tar", "nsamples": 1}]}
    (root / "index.json").write_text(json.dumps(index))
    return root / "index.json"


def yaml_file(path: Path, data: dict) -> str:
    path.write_text(json.dumps(data))  # JSON is YAML
    return str(path)


def cases(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(what, argv, a phrase the error must hold): a start-up failure of every command."""
    from models.dual_ar import init_tiny

    index = str(uncoded_curation(tmp / "curated"))
    model = str(init_tiny(tmp / "model"))
    tiny_codec = {"tiny": {"semantic_codebook_size": 16, "codebook_size": 8, "residual_codebooks": 3}}
    tiny_policy = {"init": "tiny", "tiny": {"dim": 32, "n_layer": 1, "num_codebooks": 4, "codebook_size": 16}}
    train = {"data": {"index": index}, "runtime": {"out": str(tmp / "run")}}
    grpo = {
        "policy": tiny_policy,
        "codec": tiny_codec,
        "prompts": {"index": index},
        "runtime": {"out": str(tmp / "run")},
    }
    return [
        ("curate: s2 weights missing", ["curate", "--profile", "s2", "--input", "tests/data/speech", "--output", str(tmp / "run")], "--set separation.model.checkpoint="),
        ("calibrate-quality: s2 head missing", ["calibrate-quality", "--clean", "tests/data/speech", "--out", str(tmp / "run"), "--profile", "s2", "--set", "separation.enabled=false"], "quality"),
        ("tokenize: codec missing", ["tokenize", "--input", str(tmp / "curated"), "--output", str(tmp / "run"), "--codec", str(tmp / "nope")], "--codec DIR"),
        ("tokenize: no curation", ["tokenize", "--input", str(tmp / "nope"), "--output", str(tmp / "run"), "--codec", str(tmp / "nope")], "codec"),
        ("train: untokenized shards", ["train", "--config", yaml_file(tmp / "t.yaml", train)], "s2 tokenize"),
        ("train: S2 folder missing", ["train", "--config", yaml_file(tmp / "t.yaml", train), "--set", "model.init=s2", "--set", f"model.path={tmp / 'nope'}"], "--set model.path=DIR"),
        ("train: Qwen3 missing offline", ["train", "--config", yaml_file(tmp / "t-qwen3.yaml", {**train, "data": {"index": str(tmp / "nope.json")}}), "--set", "model.init=qwen3", "--set", "model.path=nobody/no-qwen3"], "model.path"),
        ("grpo: untokenized shards", ["grpo", "--config", yaml_file(tmp / "g.yaml", grpo)], "s2 tokenize"),
        ("grpo: codec missing", ["grpo", "--config", yaml_file(tmp / "g-codec.yaml", {**grpo, "codec": {"checkpoint": str(tmp / "nope")}, "prompts": {"jsonl": str(Path("jobs/configs/grpo_demo_prompts.jsonl").resolve())}})], "--set codec.checkpoint=DIR"),
        ("grpo: policy folder missing", ["grpo", "--config", yaml_file(tmp / "g.yaml", grpo), "--set", "policy.init=s2", "--set", f"policy.path={tmp / 'nope'}"], "--set policy.path=DIR"),
        ("speak: model missing", ["speak", "--model", str(tmp / "nope"), "--codec", str(tmp / "nope"), "--text", "hi", "--out", str(tmp / "run.wav")], "--model"),
        ("speak: codec missing", ["speak", "--model", model, "--codec", str(tmp / "nope"), "--text", "hi", "--out", str(tmp / "run.wav")], "--codec DIR"),
        ("serve-rewards: s2 weights missing", ["serve-rewards", "--profile", "s2"], "--model-set"),
        ("train-quality-head: backbone missing offline", ["train-quality-head", "--data", str(tmp / "labels.jsonl"), "--backbone", "nobody/no-backbone", "--out", str(tmp / "run")], "--backbone"),
        ("bootstrap-quality-labels: no clean clips", ["bootstrap-quality-labels", "--clean", str(tmp / "nope"), "--noise", str(tmp / "nope"), "--out", str(tmp / "run")], ""),
        ("export: no checkpoint", ["export", "--checkpoint", str(tmp / "nope"), "--out", str(tmp / "run")], "cannot export"),
        ("codec: out folder is a file", ["codec", "init", "--tiny", index], ""),
    ]  # fmt: skip


def check_remedy(command: str, remedy: str) -> None:
    """The remedy parses against the raising command (a flag, --set KEY=VALUE) or the CLI (s2 ...)."""
    words = shlex.split(remedy)
    parser = build_parser()
    if words[0] == "s2":
        commands = parser._subparsers._group_actions[0].choices
        assert words[1] in commands, f"no command `s2 {words[1]}`"
        if len(words) > 2:  # an invocation, not just the command's name
            parser.parse_args(words[1:])  # SystemExit when it does not parse
        return
    sub = parser._subparsers._group_actions[0].choices[command]
    flags = {s for a in sub._actions for s in a.option_strings}
    for k, word in enumerate(words):
        if word.startswith("--"):
            assert word in flags, f"`s2 {command}` takes no {word} (remedy `{remedy}`)"
        if word == "--set":
            apply_override(SET_SCHEMAS[command], {}, words[k + 1])  # ValueError for a path the config lacks
        if word == "--model-set":
            apply_override(CurateConfig, {}, words[k + 1])


def test_every_command_has_a_start_up_error_case(tmp_path):
    commands = set(build_parser()._subparsers._group_actions[0].choices) - {"schema"}
    assert commands <= {what.split(":")[0] for what, _, _ in cases(tmp_path)}


def test_each_start_up_error_is_one_line_and_its_remedies_parse(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("S2_REWARDS_TOKEN", "t")
    clips = sorted(Path("tests/data/speech").glob("*.wav"))[:2]
    labels = "".join(json.dumps({"uri": str(c.resolve()), "overall": 2.0 + k}) + "\n" for k, c in enumerate(clips))
    tmp_path.joinpath("labels.jsonl").write_text(labels)
    checked = 0
    for what, argv, phrase in cases(tmp_path):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        last = err.splitlines()[-1] if err else ""
        assert code != 0 and last, f"{what}: rc {code}, stderr {err!r}"
        assert "Traceback" not in err, f"{what}: {err}"
        assert phrase in last, f"{what}: {last!r} lacks {phrase!r}"
        assert not (tmp_path / "run").exists(), f"{what}: wrote {tmp_path / 'run'} before failing"
        for remedy in REMEDY.findall(last):
            check_remedy(argv[0], remedy)
            checked += 1
    assert checked >= 12


@pytest.mark.parametrize(
    "command, remedy",
    [
        ("speak", "--set codec.model.checkpoint=DIR"),
        ("train", "--profile local"),
        ("train", "--set qwen3 checkpoint=x"),
    ],
)
def test_a_remedy_the_command_does_not_take_is_caught(command, remedy):
    with pytest.raises((AssertionError, ValueError, KeyError)):
        check_remedy(command, remedy)
