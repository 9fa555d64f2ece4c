"""`s2 serve-rewards`: the curation profile's quality, ASR and speaker models as reward services over HTTP (Ray Serve).

  S2_REWARDS_TOKEN=... s2 serve-rewards --profile local --host 127.0.0.1 --port 8000
      [--config rewards.yaml] [--set weights.stt=2 ...] [--model-set quality.model.options.head=heads/q1 ...]
      [--address ray://head:10001]

The rewards reuse the profile's model specs (jobs/configs/<profile>.yaml: quality.model, transcription.model,
transcription.speaker_model), with `--model-set` editing them as `s2 curate --set` does. --config is a YAML of
RewardsConfig (schemas/rewards.py: weights, R_STT tag weights, normalisation, limits, batching, resources) and --set
edits one of its leaves. Every request needs `Authorization: Bearer $S2_REWARDS_TOKEN`; the command refuses to
start without the variable. Ctrl-C (or SIGTERM) stops the services in seconds.

  curl -H "Authorization: Bearer $S2_REWARDS_TOKEN" --data-binary @request.json http://127.0.0.1:8000/v1/score/total

`python -m jobs.serve_rewards ...` runs it directly; `rewards_config` resolves the same configuration for an RL loop.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from jobs.config import add_overrides, entrypoint, subcommand
from schemas.config import layered
from schemas.rewards import TOKEN_ENV, RewardModels, RewardsConfig

# What the rewards state beyond a curation profile. The s2 profile curates without a speaker model (Qwen3-Omni
# writes the turns), so its R_SIM brings one. The three models share one GPU (Qwen3-Omni-30B-A3B in bf16 is
# ~64 GB, w2v-BERT and WavLM ~3 GB together): raise the fractions on a machine with more.
PROFILE_REWARDS: dict[str, dict] = {
    "s2": {
        "models": {
            "speaker": {
                "name": "wavlm",
                "checkpoint": "microsoft/wavlm-base-plus-sv",
                "device": "auto",
                "batch_size": 64,
            }
        },
        "service": {
            "max_batch_size": 32,
            "stt": {"num_cpus": 1, "num_gpus": 0.5},
            "quality": {"num_cpus": 1, "num_gpus": 0.25},
            "similarity": {"num_cpus": 1, "num_gpus": 0.25},
            "ingress": {"num_cpus": 1},
        },
    },
}


# Where each reward model comes from when the rewards config does not state it: the curation profile's setting, which
# this command edits with --model-set (its --set edits the rewards config).
PROFILE_SETTINGS = {
    "quality": "--model-set quality.model",
    "asr": "--model-set transcription.model",
    "speaker": "--model-set transcription.speaker_model",
}


def reward_layers(
    profile: str | None = None, job: str | Path | dict | None = None, overrides: list[str] = ()
) -> RewardsConfig:
    """defaults <- the profile's reward layer <- job YAML <- --set, before the profile's specs fill `models`."""
    from jobs.config import read_yaml

    job = read_yaml(job) if isinstance(job, (str, Path)) else (job or {})
    name = profile or job.get("profile") or "local"
    return layered(RewardsConfig, PROFILE_REWARDS.get(name, {}), job, {"profile": name}, overrides=overrides)


def with_profile_models(cfg: RewardsConfig, model_overrides: list[str] = ()) -> RewardsConfig:
    """Every model `cfg` does not state takes the curation profile's spec (after --model-set edits of the profile),
    so the rewards run the very models that filtered the data."""
    from jobs.config import curate_config

    curate = curate_config(cfg.profile, direct={"input": "-", "output": "-"}, overrides=model_overrides)
    profile_specs = {
        "quality": curate.quality.model,
        "asr": curate.transcription.model,
        "speaker": curate.transcription.speaker_model,
    }
    models = RewardModels(**{w: getattr(cfg.models, w) or spec for w, spec in profile_specs.items()})
    return cfg.model_copy(update={"models": models})


def rewards_config(
    profile: str | None = None,
    job: str | Path | dict | None = None,
    overrides: list[str] = (),
    model_overrides: list[str] = (),
) -> RewardsConfig:
    """The rewards' configuration as `s2 serve-rewards` resolves it; an RL loop builds its in-process rewards from it."""
    return with_profile_models(reward_layers(profile, job, overrides), model_overrides)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile", default=None, help="curation profile whose models the rewards run: local (default) or s2"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--config", help="YAML of reward settings (schemas/rewards.py RewardsConfig)")
    add_overrides(p, "weights.stt=2")
    p.add_argument(
        "--model-set",
        dest="model_overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one curation-profile setting, e.g. quality.model.options.head=heads/q1",
    )
    p.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")


def run(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        print(
            f"error: set {TOKEN_ENV} to the bearer token clients must send; refusing to serve without one",
            file=sys.stderr,
        )
        return 2
    from jobs.config import ConfigFileError, one_line
    from models import registry
    from models.checkpoints import CheckpointUnavailableError
    from models.rewards import required_models

    try:
        stated = reward_layers(args.profile, args.config, args.overrides)
        cfg = with_profile_models(stated, args.model_overrides)
        needed = {
            setting: (family, spec)
            for kind in ("stt", "quality", "similarity")
            for setting, family, spec in required_models(kind, cfg)
        }
        for setting, (family, spec) in needed.items():
            # a missing checkpoint is named by the setting that gave the spec: the rewards config or the profile
            registry.preflight(family, spec, setting if getattr(stated.models, family) else PROFILE_SETTINGS[family])
    except (ConfigFileError, CheckpointUnavailableError, ValueError) as exc:
        print(f"cannot start: {one_line(exc)}", file=sys.stderr)
        return 2

    from pipelines.ray_env import ensure_ray
    from pipelines.serve_rewards import start, stop

    on_cluster = bool(args.address or os.environ.get("RAY_ADDRESS"))
    ensure_ray(address=args.address)
    # SIGTERM as Ctrl-C, set after ray.init (whose own handler would abort the process): either one, while the
    # services start or once they serve, ends the wait and stops them
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        url = start(cfg, token, args.host, args.port)
        print(
            f"reward services ({cfg.profile} profile) at {url}/v1/score/{{stt,quality,similarity,total}}; Ctrl-C stops",
            flush=True,
        )
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    stop(on_cluster)
    print("reward services stopped", file=sys.stderr, flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(
        sub,
        "serve-rewards",
        "serve the quality, ASR and speaker rewards over HTTP (Ray Serve)",
        __doc__,
        add_arguments,
        run,
    )


def main(argv: list[str] | None = None) -> int:
    return entrypoint("s2 serve-rewards", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
