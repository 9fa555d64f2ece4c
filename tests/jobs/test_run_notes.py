"""`s2 train` and `s2 grpo` say what is happening: a tiny random model says so in one line when it loads, a rerun of a
finished run says "nothing to do" with its step and how to go on (and trains nothing), and the GRPO run's last lines
name its model, codec and rewards."""

from __future__ import annotations

import json

import yaml

from jobs.cli import build_parser, main
from tests.training.tiny import CODES, N, make_samples, tiny_config, write_shards


def test_a_finished_training_run_says_nothing_to_do_and_how_to_continue(tmp_path, capsys):
    index = write_shards(tmp_path / "data", make_samples(4, num_codebooks=N, codebook_size=CODES), 4)
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(tiny_config(index, tmp_path / "run", "runtime.max_steps=2").model_dump(mode="json"))
    )

    assert main(["train", "--config", str(config)]) == 0
    first = capsys.readouterr()
    note = first.err.splitlines()[0]
    assert note.startswith(
        "note: model.init is 'tiny': the model is a tiny random-init Dual-AR model (dim 32, n_layer 1"
    )
    assert json.loads(first.out)["last"]["step"] == 2
    metrics = (tmp_path / "run" / "metrics.jsonl").read_bytes()

    assert main(["train", "--config", str(config)]) == 0
    again = capsys.readouterr()
    last = again.err.strip().splitlines()[-1]
    assert last.startswith(
        f"nothing to do: {tmp_path / 'run'} holds the checkpoint of step 2, and runtime.max_steps is 2"
    )
    assert again.out == "" and (tmp_path / "run" / "metrics.jsonl").read_bytes() == metrics
    remedy = last.split("`")[1]  # --set runtime.max_steps=4: a flag this command takes
    build_parser().parse_args(["train", "--config", str(config), *remedy.split()])
    assert remedy == "--set runtime.max_steps=4"


def test_a_finished_grpo_run_says_nothing_to_do_and_names_its_outputs(tmp_path, capsys):
    layer = yaml.safe_load(open("jobs/configs/grpo_demo.yaml"))
    layer["runtime"] |= {"steps": 1, "group_size": 2, "prompts_per_step": 1, "out": str(tmp_path / "run")}
    layer["sampling"]["max_new_tokens"] = 4
    config = tmp_path / "grpo.yaml"
    config.write_text(yaml.safe_dump(layer))

    assert main(["grpo", "--config", str(config)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("note: policy.init is 'tiny'") for line in err)
    assert err[-3:] == [
        f"model:   {tmp_path / 'run' / 'model'}  (LoRA merged, released format)",
        "codec:   a tiny random-init codec (codec.tiny), rebuilt from its seed at every start",
        f"rewards: {tmp_path / 'run' / 'rewards.jsonl'}",
    ]
    assert main(["grpo", "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err.splitlines()[-1].startswith(
        f"nothing to do: {tmp_path / 'run'} holds the checkpoint of step 1, and runtime.steps is 1"
    )
