"""`s2 grpo` (one process) and `python -m jobs.grpo` (Ray, the entrypoint for `ray job submit`): GRPO post-training of
the Dual-AR model (the report, Section 4.3).

  s2 grpo --config grpo.yaml [--set runtime.steps=200 ...]
  python -m jobs.grpo --config grpo.yaml [--workers N] [--set ...]

The YAML holds any GRPOConfig fields (schemas/grpo.py; jobs/configs/grpo_demo.yaml is a tiny example); `--set
key.path=value` edits one field, parsed by its type. The rewards run in-process from the curation profile's models
(rewards.profile), or, with rewards.url, through `s2 serve-rewards` (token in $S2_REWARDS_TOKEN). A run continues
from the newest checkpoint in runtime.out when there is one. Under Ray, `--workers` (default ray.policy_workers)
policy processes generate and train together, and every in-process reward is a Ray actor of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from jobs.config import ConfigFileError, add_overrides, entrypoint, one_line, read_yaml, subcommand
from schemas.config import layered
from schemas.grpo import SERVICE_REWARDS, GRPOConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="GRPO YAML (GRPOConfig fields)")
    add_overrides(p, "runtime.steps=100")


def build_config(args: argparse.Namespace) -> GRPOConfig:
    overrides = list(args.overrides)
    if getattr(args, "workers", None) is not None:
        overrides.append(f"ray.policy_workers={args.workers}")
    return layered(GRPOConfig, read_yaml(args.config), overrides=overrides)


def resolved_rewards(config: GRPOConfig):
    """The services' RewardsConfig with the curation profile's model specs, when stt, quality or similarity run
    in-process; None otherwise (the demo's reward, or the services' URL)."""
    from jobs.serve_rewards import rewards_config

    r = config.rewards
    if r.url is not None or not any(name in SERVICE_REWARDS for name in r.active()):
        return None
    return rewards_config(r.profile, job=r.service_layer())


def _start_errors() -> tuple[type[Exception], ...]:
    """Problems of the run as a whole, found before or while it starts: said in one line."""
    from jobs.train import model_start_errors
    from models.rewards.client import RewardServiceError
    from training.grpo.loop import GRPOError
    from training.grpo.rollout import PromptError

    return (GRPOError, PromptError, RewardServiceError, *model_start_errors())


def _ready(config: GRPOConfig) -> int | None:
    """The exit code when the run cannot start (a start-up check failed), after saying why in one line; None when it
    can. Says so when a model is random. Writes nothing."""
    from jobs import startup
    from models.checkpoints import CheckpointUnavailableError

    p = config.prompts
    try:
        if config.policy.init == "s2":
            startup.check_model_folder("policy.path", config.policy.path)
        if p.jsonl is None:
            startup.check_tokenized("prompts.index" if p.index else "prompts.shards", p.index, p.shards)
    except startup.StartupError as exc:
        print(f"cannot run grpo: {exc}", file=sys.stderr)
        return 2
    try:
        codec_note = startup.random_codec_note(config.codec.checkpoint, "codec") if config.codec.checkpoint else None
    except CheckpointUnavailableError as exc:
        print(f"cannot run grpo: {exc}", file=sys.stderr)
        return 2
    for note in [*notes(config), *([codec_note.removeprefix("note: ")] if codec_note else [])]:
        print(f"note: {note}", file=sys.stderr)
    return None


def notes(config: GRPOConfig) -> list[str]:
    """What a reader of the run's output must know: random weights, and the demo's reward."""
    from jobs.startup import random_model_note

    out = []
    if config.policy.init == "tiny":
        out.append(random_model_note("policy", "policy.init", config.policy.tiny.model_dump()).removeprefix("note: "))
    if config.codec.tiny is not None:
        out.append("the codec is a tiny random-init codec: its audio is noise whatever the codes")
    if config.codec.tiny is not None and any(name in SERVICE_REWARDS for name in config.rewards.active()):
        out.append(
            "the rewards score that noise: a rise is the curation models' judgement of noise moving (e.g. DNSMOS "
            "scores longer noise higher), not speech getting better"
        )
    if "duration" in config.rewards.active():
        out.append(
            f"rewards.weights.duration: the demo's reward, the decoded audio's length over {config.rewards.duration.target_s:g} s "
            "capped at 1 (the policy learns when to stop); it measures nothing about speech"
        )
    return out


def reward_curve(config: GRPOConfig) -> str | None:
    """The mean reward of the run's first and last quarter of steps, each with its standard error over the steps,
    from its rewards.jsonl: a rise is real when it is several standard errors."""
    import numpy as np

    import storage
    from training.grpo.loop import REWARDS_LOG

    uri = storage.join(config.runtime.out, REWARDS_LOG)
    if not storage.exists(uri):
        return None
    totals = np.array([json.loads(line)["total"] for line in storage.read_bytes(uri).decode().splitlines()])
    k = len(totals) // 4
    if k < 2:
        return f"reward: {totals.mean():.4f} over {len(totals)} steps (every step: {uri})" if len(totals) else None
    first, last = totals[:k], totals[-k:]
    se = [float(x.std(ddof=1) / np.sqrt(k)) for x in (first, last)]
    rise, se_rise = last.mean() - first.mean(), float(np.hypot(*se))
    return (
        f"reward: {first.mean():.4f} +- {se[0]:.4f} over steps 1-{k}, {last.mean():.4f} +- {se[1]:.4f} over steps "
        f"{len(totals) - k + 1}-{len(totals)} (mean +- standard error over steps); rise {rise:+.4f} = "
        f"{rise / se_rise if se_rise else float('inf'):.1f} standard errors (every step: {uri})"
    )


def _config(args: argparse.Namespace):
    try:
        config = build_config(args)
        if config.rewards.url is not None and not os.environ.get(config.rewards.token_env, "").strip():
            raise ValueError(f"rewards.url is set: put the services' bearer token in ${config.rewards.token_env}")
        return config, resolved_rewards(config)
    except (ValueError, ConfigFileError) as exc:
        print(f"configuration error: {one_line(exc)}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    """One process: `s2 grpo`."""
    loaded = _config(args)
    if loaded is None:
        return 2
    config, resolved = loaded
    if (code := _ready(config)) is not None:
        return code
    from training.grpo.loop import train_grpo
    from training.grpo.rewards import build_rewards

    try:
        rewards = build_rewards(config.rewards, resolved)
        summary = train_grpo(config, rewards)
    except _start_errors() as exc:
        print(f"cannot run grpo: {one_line(exc)}", file=sys.stderr)
        return 2
    if not summary["last"]:  # no step ran: the newest checkpoint had reached runtime.steps
        from jobs.startup import nothing_to_do

        print(nothing_to_do(config.runtime.out, "runtime.steps", config.runtime.steps), file=sys.stderr)
        return 0
    print(json.dumps(summary, indent=1))
    print(reward_curve(config), file=sys.stderr)
    print(where(config, summary["model"], summary["rewards"]), file=sys.stderr)
    return 0


def where(config: GRPOConfig, model: str, rewards: str) -> str:
    """The run's last lines: where its model, codec and per-step rewards are."""
    codec = config.codec.checkpoint or "a tiny random-init codec (codec.tiny), rebuilt from its seed at every start"
    return f"model:   {model}  (LoRA merged, released format)\ncodec:   {codec}\nrewards: {rewards}"


def run_ray(args: argparse.Namespace) -> int:
    """Under Ray: `python -m jobs.grpo`."""
    loaded = _config(args)
    if loaded is None:
        return 2
    config, resolved = loaded
    if (code := _ready(config)) is not None:
        return code
    from pipelines.grpo import run_ray_grpo

    failure = run_ray_grpo(config, resolved)
    if failure is not None:
        print(f"grpo failed: {failure}", file=sys.stderr)
        return 1
    import storage
    from training.grpo.loop import MODEL_DIR, REWARDS_LOG

    lines = storage.read_bytes(storage.join(config.runtime.out, REWARDS_LOG)).decode().splitlines()
    last = {k: v for k, v in json.loads(lines[-1]).items() if k != "timeline"} if lines else None
    summary = {"out": config.runtime.out, "model": storage.join(config.runtime.out, MODEL_DIR), "last": last}
    print(json.dumps(summary, indent=1))
    print(reward_curve(config), file=sys.stderr)
    print(where(config, summary["model"], storage.join(config.runtime.out, REWARDS_LOG)), file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(
        sub,
        "grpo",
        "GRPO post-training of the Dual-AR model with the rewards (one process)",
        __doc__,
        add_arguments,
        run,
    )


def main(argv: list[str] | None = None) -> int:
    def arguments(p: argparse.ArgumentParser) -> None:
        add_arguments(p)
        p.add_argument("--workers", type=int, help="policy workers (default: ray.policy_workers)")

    return entrypoint("python -m jobs.grpo", __doc__, arguments, run_ray, argv)


if __name__ == "__main__":
    sys.exit(main())
