"""GRPO on a Ray cluster: the loop of training/grpo/loop.py in `ray.policy_workers` policy processes, the rewards in
actors of their own or behind `s2 serve-rewards`.

Policy: Ray Train's TorchTrainer starts the workers and their process group (one GPU each and NCCL with
ray.use_gpu, else gloo on CPUs); the loop takes its rank and world from torch.distributed, so it is the very loop
`s2 grpo` runs in one process: rank r generates and trains on the step's prompt slots r, r + world, ..., and the
adapters' gradients are summed over ranks. Rewards: every reward that runs in-process (stt, quality, similarity
without rewards.url, and the demo's duration) is one Ray actor holding its model wrappers (ray.reward_cpus,
ray.reward_gpus), shared by all policy workers; each worker's scorer calls it through `ActorReward`, the reward
protocol in front of the actor, from the scorer's thread for that reward, so generation goes on meanwhile. With
rewards.url the workers call the services directly. Checkpoints and rewards.jsonl go to runtime.out (local on one
machine; a shared folder or S3 with several), written by rank 0; Ray Train's own records go under runtime.out/ray.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import ray

from models.rewards.base import Reward, RewardItem
from pipelines.ray_env import ensure_ray
from pipelines.train import failure_config, ray_storage, run_trainer
from schemas.grpo import GRPOConfig, GRPORewardsConfig
from schemas.rewards import RewardResult, RewardsConfig
from training.grpo.rewards import build_rewards


def _only(rewards: GRPORewardsConfig, names: Sequence[str]) -> GRPORewardsConfig:
    """The rewards config weighing only `names` (with their weights)."""
    return rewards.model_copy(update={"weights": {n: rewards.weights[n] for n in names}})


@ray.remote
class RewardActor:
    """One reward of the run, built as in-process (training.grpo.rewards.build_rewards)."""

    def __init__(self, name: str, rewards: dict, resolved: dict | None):
        cfg = GRPORewardsConfig.model_validate(rewards)
        self.reward = build_rewards(_only(cfg, [name]), RewardsConfig.model_validate(resolved) if resolved else None)[
            name
        ]

    def ready(self) -> bool:
        return True

    def score(self, items: list[RewardItem]) -> list[RewardResult]:
        return self.reward.score(items)


class ActorReward:
    """The reward protocol in front of a RewardActor (blocks the calling thread, as any reward does)."""

    def __init__(self, name: str, actor):
        self.name, self.actor = name, actor

    def score(self, batch: Sequence[RewardItem]) -> list[RewardResult]:
        return ray.get(self.actor.score.remote(list(batch)))


def worker_rewards(config: GRPOConfig, actors: dict[str, str]) -> dict[str, Reward]:
    """A policy worker's rewards: the named reward actors, and the services' clients for the rest."""
    rewards: dict[str, Reward] = {name: ActorReward(name, ray.get_actor(actor)) for name, actor in actors.items()}
    rest = [name for name in config.rewards.active() if name not in rewards]
    if rest:
        rewards |= build_rewards(_only(config.rewards, rest))
    return rewards


def _worker_loop(loop_config: dict) -> None:
    import ray.train
    import ray.train.torch

    from training.grpo.loop import train_grpo

    config = GRPOConfig.model_validate(loop_config["config"])
    train_grpo(
        config,
        worker_rewards(config, loop_config["actors"]),
        device=ray.train.torch.get_device(),
        report=ray.train.report,
    )


def run_ray_grpo(config: GRPOConfig, resolved: RewardsConfig | None = None):
    """Run GRPO on a Ray cluster (RAY_ADDRESS or ray.address; else a local Ray); None when it completed, else why it
    failed in one line. `resolved`: the services' RewardsConfig with the profile's models, for in-process stt,
    quality, similarity."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    ensure_ray(config.ray.address)
    r, rc = config.rewards, config.ray
    in_actors = [name for name in r.active() if name == "duration" or r.url is None]
    run_id = uuid.uuid4().hex[:8]
    actors, handles = {}, []
    for name in in_actors:
        actors[name] = f"s2-grpo-{run_id}-{name}"
        handles.append(
            RewardActor.options(name=actors[name], num_cpus=rc.reward_cpus, num_gpus=rc.reward_gpus).remote(
                name, r.model_dump(mode="json"), resolved.model_dump(mode="json") if resolved else None
            )
        )
    try:
        ray.get([h.ready.remote() for h in handles])  # a reward that cannot be built fails the run here
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={"config": config.model_dump(mode="json"), "actors": actors},
            scaling_config=ScalingConfig(
                num_workers=rc.policy_workers,
                use_gpu=rc.use_gpu,
                resources_per_worker={"CPU": rc.policy_cpus, **({"GPU": 1} if rc.use_gpu else {})},
            ),
            torch_config=TorchConfig(backend="nccl" if rc.use_gpu else "gloo"),
            run_config=RunConfig(
                name="s2-grpo",
                storage_path=ray_storage(config.runtime.out),
                failure_config=failure_config(0, rc.start_timeout_s),
            ),
        )
        return run_trainer(trainer, rc.start_timeout_s)
    finally:
        for h in handles:
            ray.kill(h)
