"""Fixtures of the GRPO tests: a tiny random codec with small codebooks (16 semantic entries like the tiny policy's,
8 per acoustic codebook, so the sampler must stay below them), prompts with real reference voices from tests/data,
and one tiny GRPO run (the `duration` reward) that several tests read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from schemas.config import layered
from schemas.grpo import GRPOConfig
from tests.conftest import DATA

N, SEMANTIC, ACOUSTIC = 4, 16, 8
FRAME_S = 2048 / 44100
PROMPTS = [
    {
        "text": "<|speaker:0|>Author of the danger trail, Philip Steels, etc.",
        "reference_audio": str(DATA / "speech" / "pyroomacoustics__cmu_arctic_us_axb_a0005.wav"),
        "reference_text": "placeholder transcript of the second arctic voice",
    },
    {
        "text": "<|speaker:0|>Lord, but I'm glad to see you again, Phil.",
        "reference_audio": str(DATA / "speech" / "pyroomacoustics__cmu_arctic_us_aew_a0003.wav"),
        "reference_text": "placeholder transcript of the first arctic voice",
    },
    {"text": "<|speaker:0|>Hello there [laugh] how are you?"},
]
# the demo's settings at test size: 16 frames at most, and the duration reward's target at 16 frames
BASE = {
    "policy": {"init": "tiny", "tiny": {"dim": 64, "n_layer": 1, "num_codebooks": N, "codebook_size": SEMANTIC}},
    "codec": {
        "tiny": {"semantic_codebook_size": SEMANTIC, "codebook_size": ACOUSTIC, "residual_codebooks": N - 1},
        "device": "cpu",
    },
    "sampling": {"temperature": 1.0, "top_p": 1.0, "top_k": 64, "ras_window": 0, "max_new_tokens": 16},
    "optimizer": {"lr": 2e-2, "warmup_steps": 0},
    "rewards": {"weights": {"duration": 1.0}, "duration": {"target_s": 16 * FRAME_S}},
    "runtime": {
        "steps": 16,
        "group_size": 8,
        "prompts_per_step": 2,
        "dtype": "float32",
        "device": "cpu",
        "cpu_threads": 1,
        "ckpt_every": 4,
    },
}
RUN_STEPS = 16


def write_prompts(path: Path, prompts: list[dict] = PROMPTS) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    return path


def grpo_config(prompts: Path, out: Path | str, *overrides: str, layer: dict | None = None) -> GRPOConfig:
    return layered(
        GRPOConfig,
        BASE,
        {"prompts": {"jsonl": str(prompts)}, "runtime": {"out": str(out)}},
        layer or {},
        overrides=list(overrides),
    )


@pytest.fixture(scope="session")
def prompts_file(tmp_path_factory) -> Path:
    return write_prompts(tmp_path_factory.mktemp("grpo_prompts") / "prompts.jsonl")


@pytest.fixture(scope="session")
def tiny_codec():
    from schemas.grpo import CodecSection
    from training.grpo.loop import build_codec

    return build_codec(CodecSection.model_validate(BASE["codec"]))


@pytest.fixture(scope="session")
def demo_run(prompts_file, tmp_path_factory):
    """(out folder, rewards.jsonl lines, summary) of an uninterrupted tiny run of RUN_STEPS steps."""
    from training.grpo.loop import train_grpo
    from training.grpo.rewards import build_rewards

    out = tmp_path_factory.mktemp("grpo_run")
    config = grpo_config(prompts_file, out)
    threads = torch.get_num_threads()
    try:
        summary = train_grpo(config, build_rewards(config.rewards))
    finally:
        torch.set_num_threads(threads)
    lines = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    return out, lines, summary
