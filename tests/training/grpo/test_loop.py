"""The GRPO loop end to end on CPU with tiny random models: the demo's learnable reward rises, every component is
logged, the timeline of a step (the loop's own timestamps), the run leaves checkpoints and a merged policy;
and one step with the real local rewards (DNSMOS, pocketsphinx, resemblyzer) on reference voices from tests/data."""

from __future__ import annotations

import json
import math

import pytest

from tests.training.grpo.conftest import RUN_STEPS, grpo_config

K = 4  # steps averaged at each end of the run


def test_a_learnable_reward_rises(demo_run):
    _, lines, _ = demo_run
    totals = [line["total"] for line in lines]
    assert [line["step"] for line in lines] == list(range(1, RUN_STEPS + 1))
    first, last = sum(totals[:K]) / K, sum(totals[-K:]) / K
    assert last > first + 0.1, totals
    # how: the tiny policy learns to put off <|im_end|>, so the decoded audio gets longer
    frames, ended = ([line[key] for line in lines] for key in ("frames", "ended"))
    assert sum(frames[-K:]) > sum(frames[:K]) and sum(ended[-K:]) < sum(ended[:K])


def test_every_component_is_logged(demo_run):
    out, lines, summary = demo_run
    for line in lines:
        assert set(line["components"]) == {"duration", "duration.seconds"}
        # a rollout without audio earned the worst reward: 0 in the total, no components
        assert line["components"]["duration"] == pytest.approx(line["total"] * 16 / (16 - line["errors"]), abs=1e-9)
        assert line["unscored"] == line["dropped"] == 0
        for key in ("loss", "loss_slow", "loss_fast", "kl_slow", "kl_fast", "grad_norm", "lr", "group_std", "frames"):
            assert math.isfinite(line[key]), key
        assert line["loss"] == pytest.approx(line["loss_slow"] + line["loss_fast"])  # gamma 1
        # the only failures are rollouts that ended before their first frame: every other one was decoded once
        assert line["errors"] == 0 or line["error"].startswith("no audio")
        assert line["decoded"] + line["cache_hits"] == 16 - line["errors"]
    # the first step's policy is the reference (LoRA's B starts at zero): its KL is exactly 0, then it moves
    assert lines[0]["kl_slow"] == 0.0 and lines[0]["kl_fast"] == 0.0
    assert lines[-1]["kl_slow"] > 0 and lines[-1]["kl_fast"] > 0
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["latest", "step-00000012", "step-00000016"]  # keep_checkpoints 2
    from models.dual_ar.checkpoint import from_s2_checkpoint

    model, _ = from_s2_checkpoint(summary["model"])  # LoRA merged into plain weights, the released format
    assert not any("lora" in name for name in model.state_dict())
    assert summary["resumed_from"] == 0 and summary["last"]["step"] == RUN_STEPS


def test_the_timeline_orders_generation_scoring_and_the_update(demo_run):
    _, lines, _ = demo_run
    for line in lines:
        timeline = line["timeline"]
        reference = timeline["reference"]
        assert [g["slot"] for g in timeline["groups"]] == [0, 1]
        for group in timeline["groups"]:
            assert timeline["generate"][1] <= group["score"][0]  # scored once the batch was drawn
            assert timeline["generate"][1] <= reference[0]  # the reference pass runs while the groups are scored
        assert max(g["score"][1] for g in timeline["groups"]) <= timeline["update"][0]


def test_one_step_with_the_real_local_rewards(prompts_file, tmp_path):
    from jobs.serve_rewards import rewards_config
    from training.grpo.loop import GRPOError, train_grpo
    from training.grpo.rewards import build_rewards

    layer = {
        "rewards": {"weights": {"stt": 1.0, "quality": 1.0, "similarity": 1.0}, "profile": "local"},
        "sampling": {"max_new_tokens": 24},
    }
    one_step = ("runtime.steps=1", "runtime.group_size=2", "runtime.prompts_per_step=1")
    config = grpo_config(prompts_file, tmp_path, *one_step, layer=layer)
    resolved = rewards_config("local", job=config.rewards.service_layer())
    with pytest.raises(GRPOError, match="needs a reference voice in every prompt; line3 has none"):
        train_grpo(config, build_rewards(config.rewards, resolved))
    voiced = tmp_path / "voiced.jsonl"
    voiced.write_text("".join(line for line in prompts_file.read_text().splitlines(True) if "reference_audio" in line))
    config = grpo_config(voiced, tmp_path, *one_step, layer=layer)
    assert (resolved.models.quality.name, resolved.models.asr.name, resolved.models.speaker.name) == (
        "dnsmos",
        "pocketsphinx",
        "resemblyzer",
    )
    summary = train_grpo(config, build_rewards(config.rewards, resolved))
    line = json.loads((tmp_path / "rewards.jsonl").read_text())
    assert summary["last"]["step"] == 1 and line["step"] == 1
    components = line["components"]
    assert {"stt", "quality", "similarity", "similarity.cosine", "stt.wer"} <= set(components), components
    assert all(math.isfinite(v) for v in components.values())
    assert math.isfinite(line["loss"]) and line["errors"] in (0, 1, 2)


def test_a_resume_keeps_every_setting_but_the_resumable_ones(prompts_file, tmp_path):
    from training.grpo.loop import GRPOError, check_resumable

    saved = grpo_config(prompts_file, tmp_path).model_dump(mode="json")
    check_resumable(saved, grpo_config(prompts_file, tmp_path, "runtime.steps=99"), "ckpt")
    with pytest.raises(
        GRPOError, match=r"written with loss.length_norm=\"constant\", this run has loss.length_norm=\"sequence\""
    ):
        check_resumable(saved, grpo_config(prompts_file, tmp_path, "loss.length_norm=sequence"), "ckpt")
