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


def notes(config: GRPOConfig) -> list[str]:
    """What a reader of the run's output must know: random weights, and the demo's reward."""
    out = []
    if config.policy.init == "tiny":
        out.append("the policy is a tiny random-init Dual-AR model, not a trained one")
    if config.codec.tiny is not None:
        out.append("the codec is a tiny random-init codec: its audio is noise whatever the codes")
    if "duration" in config.rewards.active():
        out.append(
            f"rewards.weights.duration: the demo's reward, the decoded audio's length over {config.rewards.duration.target_s:g} s "
            "capped at 1 (the policy learns when to stop); it measures nothing about speech"
        )
    return out


def reward_curve(config: GRPOConfig, k: int = 5) -> str | None:
    """The mean reward of the run's first and last k steps, from its rewards.jsonl."""
    import storage
    from training.grpo.loop import REWARDS_LOG

    uri = storage.join(config.runtime.out, REWARDS_LOG)
    if not storage.exists(uri):
        return None
    totals = [json.loads(line)["total"] for line in storage.read_bytes(uri).decode().splitlines()]
    if not totals:
        return None
    k = min(k, len(totals))
    first, last = sum(totals[:k]) / k, sum(totals[-k:]) / k
    return f"reward: {first:.3f} over steps 1-{k}, {last:.3f} over steps {len(totals) - k + 1}-{len(totals)} (every step: {uri})"


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
    from training.grpo.loop import train_grpo
    from training.grpo.rewards import build_rewards

    for note in notes(config):
        print(f"note: {note}", file=sys.stderr)
    try:
        rewards = build_rewards(config.rewards, resolved)
        summary = train_grpo(config, rewards)
    except _start_errors() as exc:
        print(f"cannot run grpo: {one_line(exc)}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    print(reward_curve(config), file=sys.stderr)
    return 0


def run_ray(args: argparse.Namespace) -> int:
    """Under Ray: `python -m jobs.grpo`."""
    loaded = _config(args)
    if loaded is None:
        return 2
    config, resolved = loaded
    from pipelines.grpo import run_ray_grpo

    for note in notes(config):
        print(f"note: {note}", file=sys.stderr)
    result = run_ray_grpo(config, resolved)
    if result.error is not None:
        cause = result.error
        while getattr(cause, "__cause__", None) is not None:
            cause = cause.__cause__
        message = str(cause).strip().splitlines()
        print(f"grpo failed: {type(cause).__name__}: {message[-1] if message else ''}", file=sys.stderr)
        return 1
    import storage
    from training.grpo.loop import MODEL_DIR, REWARDS_LOG

    lines = storage.read_bytes(storage.join(config.runtime.out, REWARDS_LOG)).decode().splitlines()
    last = {k: v for k, v in json.loads(lines[-1]).items() if k != "timeline"} if lines else None
    summary = {"out": config.runtime.out, "model": storage.join(config.runtime.out, MODEL_DIR), "last": last}
    print(json.dumps(summary, indent=1))
    print(reward_curve(config), file=sys.stderr)
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
