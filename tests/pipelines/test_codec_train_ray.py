"""Codec training under Ray Train: 2 CPU workers (gloo, FSDP2) reading the shard from S3 and checkpointing there give
the losses and the weights of one process on the same global batches."""

from __future__ import annotations

import json
import warnings

import boto3
import pytest
import torch
import yaml

from jobs import codec_train
from models.codec.checkpoint import RandomWeightsWarning, random_codec, read_state, release_key
from models.codec.config import CodecConfig
from tests.training.codec.tiny import tiny_codec_config, write_shard
from training.checkpoint import STATE
from training.codec.loop import train

pytestmark = pytest.mark.ray
COMPARED = ("loss_generator", "loss_discriminator", "mel", "adversarial", "feature_matching", "commitment", "codebook")


def test_two_ray_workers_match_one_process(ray_session, bucket, tmp_path, capsys):
    shard = write_shard(tmp_path / "data")
    s3 = boto3.client("s3")
    s3.upload_file(str(shard), bucket, "data/shard-000000.tar")
    common = ("runtime.max_steps=2", "data.batch_size=4", "runtime.ckpt_every=1", "loss.quantizer_dropout=0.5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        train(tiny_codec_config([shard], tmp_path / "one", *common))
    config = tiny_codec_config([f"s3://{bucket}/data/shard-000000.tar"], f"s3://{bucket}/run", *common)
    (tmp_path / "codec.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert codec_train.main(["--config", str(tmp_path / "codec.yaml"), "--workers", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["last"]["step"] == 2

    one = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    body = s3.get_object(Bucket=bucket, Key="run/metrics.jsonl")["Body"].read().decode()
    two = [json.loads(line) for line in body.splitlines()]
    assert [m["step"] for m in two] == [1, 2]
    for a, b in zip(one, two):
        assert a["codebook_perplexity"] == b["codebook_perplexity"]  # the same crops, the same codes
        for key in COMPARED:
            assert b[key] == pytest.approx(a[key], rel=1e-4), (a["step"], key)
    s3.download_file(bucket, "run/codec/codec.pth", str(tmp_path / "two.pth"))
    single, sharded = read_state(tmp_path / "one" / "codec" / "codec.pth"), read_state(tmp_path / "two.pth")
    assert list(single) == list(sharded)
    # Adam moves an element by about lr whatever its gradient's size, so rounding in the gradients' all-reduce
    # flips the few elements whose gradient is ~0: compare the updates from the common start as a whole
    start = {release_key(k): v for k, v in random_codec(CodecConfig.tiny(), seed=0).state_dict().items()}
    one_update = torch.cat([(single[k] - start[k]).flatten() for k in single])
    two_update = torch.cat([(sharded[k] - start[k]).flatten() for k in single])
    assert float(torch.nn.functional.cosine_similarity(one_update, two_update, dim=0)) > 0.99
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="run/")["Contents"]}
    assert {"run/checkpoints/latest", f"run/checkpoints/step-00000002/{STATE}", "run/eval.json"} <= keys
