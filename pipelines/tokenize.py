"""`s2 tokenize` on Ray Data: one task per input shard, each run by a codec actor (GPU fraction and pool size from
`codec.resources`), which reads the shard, encodes its samples in batches grouped by duration and writes the output
shard and its completion record (curation/io/tokenized.py); only per-shard summaries reach the driver."""

from __future__ import annotations

import sys

import ray
from ray.data import ActorPoolStrategy

from curation.io.tokenized import TokenizePlan, TokenizePlanError, done_shards, finalize_tokenized, tokenize_shard
from curation.stages.codec import CodecStage
from models import registry
from pipelines.curate import configure_data_context
from pipelines.ray_env import ensure_ray, kill_pool_actors, without_benign_ray_lines
from schemas.config import TokenizeConfig


class ShardTokenizer:
    def __init__(self, stage: CodecStage, input_root: str, output: str):
        self.stage, self.input_root, self.output = stage, input_root, output
        stage.setup()

    def __call__(self, batch) -> dict:
        records = [tokenize_shard(self.input_root, str(shard), self.output, self.stage) for shard in batch["shard"]]
        return {
            "shard": [r["shard"]["url"] for r in records],
            "samples": [r["shard"]["nsamples"] for r in records],
            "rejects": [len(r["rejects"]) for r in records],
        }


def run_tokenize(cfg: TokenizeConfig, progress: bool | None = None) -> dict:
    """Tokenize (or resume tokenizing) cfg.input into cfg.output; returns the summary."""
    registry.preflight("codec", cfg.codec.model, "codec.model")
    plan = TokenizePlan.load(cfg.output)
    if plan is not None and (plan.input, plan.fingerprint) != (cfg.input, cfg.fingerprint()):
        raise TokenizePlanError(
            f"{cfg.output} holds a tokenization of another input or with another codec; write to a new output"
        )
    resumed = plan is not None
    plan = plan or TokenizePlan.create(cfg.input, cfg.fingerprint())
    ensure_ray(cfg.ray_address, cfg.num_cpus)
    if not resumed:
        plan.save(cfg.output)
    done = done_shards(cfg.output, plan)
    todo = [s for s in plan.shards if s not in done]
    if todo:
        configure_data_context()
        res = cfg.codec.resources
        ds = ray.data.from_items([{"shard": s} for s in todo], override_num_blocks=len(todo)).map_batches(
            ShardTokenizer,
            fn_constructor_kwargs={"stage": CodecStage(cfg.codec), "input_root": cfg.input, "output": cfg.output},
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=res.concurrency, max_tasks_in_flight_per_actor=1),
            num_cpus=res.num_cpus,
            num_gpus=res.num_gpus,
        )
        bar = None
        if progress if progress is not None else sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=len(plan.shards), initial=len(done), unit="shard", desc="tokenize", file=sys.stderr)
        with without_benign_ray_lines():
            try:
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    if bar is not None:
                        bar.update(len(batch["shard"]))
            except Exception:
                kill_pool_actors([ShardTokenizer.__name__])
                raise
        if bar is not None:
            bar.close()
    missing = set(plan.shards) - done_shards(cfg.output, plan)
    if missing:
        raise RuntimeError(
            f"{len(missing)} shards were not tokenized (e.g. {sorted(missing)[:3]}); run the same command again to resume"
        )
    return {**finalize_tokenized(cfg.output, plan), "resumed": resumed, "shards_skipped": len(done)}
