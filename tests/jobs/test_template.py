"""`s2 schema NAME --yaml`: a commented YAML of every field and default, generated from the schemas, that loads back
to the schema's defaults once its required fields are filled in; and the starter configs in jobs/configs/."""

from __future__ import annotations

import re

import pytest
import yaml
from pydantic import BaseModel

from jobs.cli import CONFIG_COMMANDS, SCHEMAS, main
from jobs.config import CONFIG_DIR, read_yaml
from schemas.config import CurateConfig, layered
from schemas.grpo import GRPOConfig
from schemas.rewards import RewardsConfig
from schemas.training import TrainConfig

# the fewest settings each configuration needs, and what they give
REQUIRED = {
    "train-config": ({"data": {"index": "d/index.json"}}, TrainConfig),
    "grpo-config": (
        {"policy": {"path": "m"}, "codec": {"checkpoint": "c.pth"}, "prompts": {"jsonl": "p.jsonl"}},
        GRPOConfig,
    ),
    "config": ({"input": "in", "output": "out"}, CurateConfig),
    "rewards-config": ({}, RewardsConfig),
}


def template(name: str, capsys) -> str:
    assert main(["schema", name, "--yaml"]) == 0
    return capsys.readouterr().out


def fill(data: dict, required: dict) -> dict:
    for key, value in required.items():
        data[key] = fill(data.get(key) or {}, value) if isinstance(value, dict) else value
    return data


def descriptions(model: type[BaseModel]):
    for field in model.model_fields.values():
        if field.description:
            yield field.description
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from descriptions(arg)


@pytest.mark.parametrize("name", sorted(CONFIG_COMMANDS))
def test_the_template_loads_back_to_the_schema_defaults(name, capsys):
    text = template(name, capsys)
    required, model = REQUIRED[name]
    loaded = fill(yaml.safe_load(text), required)
    assert model.model_validate(loaded) == model.model_validate(required)
    assert text.startswith("# Every field of") and CONFIG_COMMANDS[name] in text
    comments = " ".join(re.sub(r"^[#\s]+", "", line) for line in text.splitlines() if line.strip().startswith("#"))
    for description in descriptions(model):
        assert " ".join(description.split()) in comments, description


def test_a_section_built_with_other_defaults_shows_them(capsys):
    text = template("grpo-config", capsys)
    lora = text[text.index("\nlora:") :]
    assert re.search(r"\n  enabled: true\n", lora[: lora.index("\n\n")])  # GRPO refuses lora.enabled false
    assert "# REQUIRED section\npolicy:" in text
    assert "  # when set, e.g.:\n  # tiny:\n  #   # Entries of the semantic codebook" in text


def test_only_configurations_have_a_template(capsys):
    assert set(CONFIG_COMMANDS) <= set(SCHEMAS)
    assert main(["schema", "sample", "--yaml"]) == 2
    assert "--yaml is for configurations" in capsys.readouterr().err


STARTERS = {
    "finetune_s2pro.yaml": (TrainConfig, ["s2 train --config jobs/configs/finetune_s2pro.yaml"]),
    "pretrain_qwen3.yaml": (TrainConfig, ["python -m jobs.train --config jobs/configs/pretrain_qwen3.yaml"]),
    "grpo_s2pro.yaml": (GRPOConfig, ["s2 grpo --config jobs/configs/grpo_s2pro.yaml"]),
}


@pytest.mark.parametrize("name", sorted(STARTERS))
def test_a_starter_config_is_valid_commented_and_names_its_command(name):
    model, commands = STARTERS[name]
    config = layered(model, read_yaml(CONFIG_DIR / name))
    text = (CONFIG_DIR / name).read_text()
    assert all(c in text for c in commands) and text.count("#") >= 8
    assert all(c in (CONFIG_DIR.parents[1] / "README.md").read_text() for c in commands)
    if isinstance(config, TrainConfig):
        assert config.model.init in ("s2", "qwen3") and config.data.index
    else:  # the defaults GRPO accepts on prompts from shards: no reference voice required
        assert config.policy.init == "s2" and config.prompts.index and "similarity" not in config.rewards.active()


def test_the_schema_defaults_of_grpo_need_no_reference_voice():
    config = GRPOConfig.model_validate(REQUIRED["grpo-config"][0])
    assert config.lora.enabled and "similarity" not in config.rewards.active()
