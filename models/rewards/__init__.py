"""Rewards of RL post-training, built from the same wrappers (and the same ModelSpecs) the curation stages run.

    from models.rewards import RewardItem, build_reward
    reward = build_reward("total", cfg)  # cfg: RewardsConfig with `models` resolved (jobs.serve_rewards.rewards_config)
    results = reward.score([RewardItem(audio, 44100, text="<|speaker:0|>Hi [laugh]", reference=ref)])
    results[0].score, results[0].components, results[0].error

`RewardClient(url, kind)` (models/rewards/client.py) scores the same items through `s2 serve-rewards` with
the same results. Ray-agnostic: usable in a training loop, a Serve replica or a notebook.
"""

from __future__ import annotations

from models import registry
from models.rewards.base import Reward, RewardItem
from models.rewards.preference import PreferenceReward
from models.rewards.similarity import SimilarityReward
from models.rewards.stt import OfflineStt, TeacherForcedStt
from models.rewards.total import TotalReward
from schemas.config import ModelSpec
from schemas.rewards import RewardKind, RewardsConfig

__all__ = ["Reward", "RewardItem", "build_reward", "required_models", "Wrappers"]


def _spec(cfg: RewardsConfig, which: str) -> ModelSpec:
    spec = getattr(cfg.models, which)
    if spec is None:
        raise ValueError(
            f"models.{which}: no model spec; resolve the curation profile's specs first (jobs.serve_rewards.rewards_config)"
        )
    return spec


def teacher_forced(spec: ModelSpec) -> bool:
    """Whether this transcriber scores given text (without loading it)."""
    return hasattr(registry.model_class("asr", spec.name, "models.asr"), "teacher_forced_logprobs")


def required_models(kind: RewardKind, cfg: RewardsConfig) -> list[tuple[str, str, ModelSpec]]:
    """(setting, family, spec) of each model a reward of this kind runs; the offline R_STT uses the speaker model
    when there is one."""
    which: list[str] = []
    for component in cfg.needs(kind):
        if component == "stt":
            which += ["asr"] + (
                ["speaker"] if not teacher_forced(_spec(cfg, "asr")) and cfg.models.speaker is not None else []
            )
        else:
            which.append("quality" if component == "quality" else "speaker")
    return [(f"models.{w}", w, _spec(cfg, w)) for w in dict.fromkeys(which)]  # each family is named as its setting


class Wrappers:
    """The model wrappers of one rewards config, each built once and shared by the rewards that use it."""

    def __init__(self, cfg: RewardsConfig):
        self.cfg = cfg
        self._built: dict[str, object] = {}

    def get(self, which: str):
        if which not in self._built:
            self._built[which] = registry.build(which, _spec(self.cfg, which), f"models.{which}")
        return self._built[which]


def build_reward(kind: RewardKind, cfg: RewardsConfig, wrappers: Wrappers | None = None) -> Reward:
    """The reward `kind` ('stt', 'quality', 'similarity' or 'total') with its models loaded (shared through
    `wrappers` when given)."""
    wrappers = wrappers or Wrappers(cfg)
    if kind == "total":
        return TotalReward({c: build_reward(c, cfg, wrappers) for c in cfg.needs("total")}, cfg.weights, cfg.audio)
    if kind == "quality":
        return PreferenceReward(wrappers.get("quality"), cfg.preference, cfg.audio)
    if kind == "similarity":
        return SimilarityReward(wrappers.get("speaker"), cfg.similarity, cfg.audio)
    if kind == "stt":
        if teacher_forced(_spec(cfg, "asr")):
            return TeacherForcedStt(wrappers.get("asr"), cfg.stt, cfg.audio)
        speaker = wrappers.get("speaker") if cfg.models.speaker is not None else None
        return OfflineStt(wrappers.get("asr"), speaker, cfg.models.speaker, cfg.stt, cfg.audio)
    raise ValueError(f"unknown reward {kind!r}; choose stt, quality, similarity or total")
