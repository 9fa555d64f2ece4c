"""w2v-BERT quality scorer, GPU-ready fbank and head training, on a tiny randomly initialised backbone."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from curation.evaluation.degrade import bootstrap
from curation.io.audio import decode_file
from models import registry
from models.checkpoints import CheckpointUnavailableError
from models.quality.fbank import SeamlessFbank
from models.quality.head import load_head
from models.quality.training import train_quality_head
from models.quality.w2vbert import W2vBertQualityScorer
from schemas.config import ModelSpec
from tests.conftest import DATA

SR = 16000
DIMS = ("overall", "snr", "recording_quality", "speaker_consistency")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: thread start-up costs more than it saves (and a busy shared CPU makes it far worse)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_backbone(tiny_w2vbert) -> Path:
    return tiny_w2vbert


@pytest.fixture(scope="module")
def labelled():
    """Bootstrapped training set: 8 clean 2 s clips + 5 degraded copies each (48 clips)."""
    files = sorted((DATA / "speech").glob("*.wav"))[:8]
    clean = {f.stem: decode_file(str(f), SR).audio[: 2 * SR] for f in files}
    noises = [decode_file(str(DATA / "noise" / "dishes_20s.flac"), SR).audio]
    items = bootstrap(clean, SR, noises, per_clip=5, seed=0)
    return [it.audio for _, it in items], {d: [it.labels[d] for _, it in items] for d in DIMS}


@pytest.fixture(scope="module")
def trained(tiny_backbone, labelled, tmp_path_factory):
    waves, labels = labelled
    out = tmp_path_factory.mktemp("head")
    result = train_quality_head(
        waves, SR, labels, backbone=str(tiny_backbone), out=out, epochs=30, lr=3e-3, seed=0, device="cpu"
    )
    return result


def test_gpu_fbank_matches_the_seamless_feature_extractor():
    from transformers import SeamlessM4TFeatureExtractor

    rng = np.random.default_rng(0)
    speech = decode_file(str(DATA / "speech" / "pyroomacoustics__cmu_arctic_us_aew_a0001.wav"), SR).audio
    waves = [
        speech[: 3 * SR + 123],
        speech[SR : 2 * SR],
        (0.05 * rng.standard_normal(SR + 401)).astype(np.float32),
        speech[:5000],
    ]
    ref = SeamlessM4TFeatureExtractor()(waves, sampling_rate=SR, return_tensors="np")
    feats, mask = SeamlessFbank("cpu")(waves)
    assert feats.shape == ref["input_features"].shape and feats.dtype == torch.float32
    assert np.array_equal(mask.numpy(), ref["attention_mask"])
    np.testing.assert_allclose(feats.numpy(), ref["input_features"], atol=2e-3)


def test_head_training_lowers_the_validation_loss(trained):
    assert trained.n_train == 38 and trained.n_val == 10 and len(trained.val_loss) == 30
    assert min(trained.val_loss) < 0.9 * trained.initial_val_loss
    assert trained.train_loss[-1] < 0.6 * trained.train_loss[0]
    assert trained.checkpoint.name == "quality_head.pt" and trained.dims == list(DIMS)


def test_head_training_is_reproducible_for_a_seed(tiny_backbone, labelled, tmp_path, trained):
    waves, labels = labelled
    again = train_quality_head(
        waves, SR, labels, backbone=str(tiny_backbone), out=tmp_path, epochs=30, lr=3e-3, seed=0, device="cpu"
    )
    assert again.val_loss == trained.val_loss and again.best_epoch == trained.best_epoch


def test_scorer_loads_backbone_via_from_pretrained_and_is_deterministic(tiny_backbone, trained, labelled):
    waves, _ = labelled
    scorer = registry.build(
        "quality",
        ModelSpec(
            name="w2vbert",
            checkpoint=str(tiny_backbone),
            options={"head": str(trained.checkpoint.parent)},
            batch_size=4,
        ),
        "quality.model",
    )
    assert isinstance(scorer, W2vBertQualityScorer) and scorer.dimensions == DIMS
    clips = [waves[0], waves[7][: SR // 2], waves[13]]
    first, second = scorer.score(clips, SR), scorer.score(clips, SR)
    assert first == second
    assert all(set(s.dimensions()) == set(DIMS) and 0 < s.extra["p_good_overall"] < 1 for s in first)
    alone = scorer.score([clips[1]], SR)[0]  # batch composition and padding do not change a clip's score
    assert alone.overall == pytest.approx(first[1].overall, abs=1e-4)
    from models.signal import resample

    at_48k = scorer.score([resample(clips[0], SR, 48000)], 48000)[0]
    assert at_48k.overall == pytest.approx(first[0].overall, abs=0.05)


def test_backbone_defaults_to_the_one_recorded_in_the_head(tiny_backbone, trained):
    scorer = W2vBertQualityScorer.from_spec(ModelSpec(name="w2vbert", options={"head": str(trained.checkpoint)}))
    assert (
        str(tiny_backbone) in scorer.model_id and len(scorer.score([np.full(100, 0.1, np.float32)], SR)) == 1
    )  # very short: padded


def test_unfreezing_top_layers_saves_them_and_the_scorer_applies_them(tiny_backbone, labelled, tmp_path, trained):
    waves, labels = labelled
    small = slice(0, 48, 3)
    result = train_quality_head(
        waves[small], SR, {d: v[small] for d, v in labels.items()}, backbone=str(tiny_backbone), out=tmp_path / "h.pt",
        epochs=2, lr=3e-3, seed=0, device="cpu", unfreeze_top=1,
    )  # fmt: skip
    head, layers = load_head(result.checkpoint)
    assert layers and all(k.startswith("encoder.layers.1.") for k in layers) and head.config.unfrozen_layers == 1
    scorer = W2vBertQualityScorer.from_spec(ModelSpec(name="w2vbert", options={"head": str(result.checkpoint)}))
    for k, v in layers.items():
        assert torch.equal(scorer.backbone.model.state_dict()[k], v)


def test_missing_head_fails_fast_naming_the_setting(tiny_backbone, tmp_path):
    with pytest.raises(CheckpointUnavailableError, match=r"quality\.model\.options\.head"):
        registry.preflight("quality", ModelSpec(name="w2vbert", checkpoint=str(tiny_backbone)), "quality.model")
    with pytest.raises(CheckpointUnavailableError, match="not found"):
        registry.preflight(
            "quality",
            ModelSpec(name="w2vbert", checkpoint=str(tiny_backbone), options={"head": str(tmp_path / "none.pt")}),
            "quality.model",
        )


def test_preflight_names_an_unavailable_backbone(trained, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointUnavailableError, match="quality.model.checkpoint"):
        registry.preflight(
            "quality",
            ModelSpec(name="w2vbert", checkpoint="nobody/no-such-w2v-bert", options={"head": str(trained.checkpoint)}),
            "quality.model",
        )


def test_bootstrap_and_train_commands_round_trip(tiny_backbone, tmp_path, capsys):
    import argparse

    from jobs import train_quality_head as job

    parser = argparse.ArgumentParser()
    job.register(parser.add_subparsers())
    clean = tmp_path / "clean"
    clean.mkdir()
    for f in (
        "pyroomacoustics__cmu_arctic_us_aew_a0001.wav",
        "pyroomacoustics__cmu_arctic_us_axb_a0004.wav",
        "leopard__test.wav",
    ):
        (clean / f).write_bytes((DATA / "speech" / f).read_bytes())
    out = tmp_path / "boot"
    args = parser.parse_args(
        [
            "bootstrap-quality-labels",
            "--clean",
            str(clean),
            "--noise",
            str(DATA / "noise"),
            "--out",
            str(out),
            "--per-clip",
            "3",
        ]
    )
    assert args.func(args) == 0
    rows = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all((out / r["uri"]).is_file() and 1 <= r["overall"] <= 5 for r in rows)
    capsys.readouterr()
    args = parser.parse_args(
        [
            "train-quality-head",
            "--data",
            str(out / "labels.jsonl"),
            "--backbone",
            str(tiny_backbone),
            "--out",
            str(tmp_path / "head"),
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--threshold",
            "overall=3.5",
        ]
    )
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_train"] + summary["n_val"] == 12 and summary["dims"] == [
        "overall",
        "snr",
        "speaker_consistency",
        "recording_quality",
        "intelligibility",
    ]
    head, _ = load_head(summary["checkpoint"])
    assert head.config.thresholds[0] == 3.5
    args = parser.parse_args(
        [
            "train-quality-head",
            "--data",
            str(out / "labels.jsonl"),
            "--out",
            str(tmp_path / "h2"),
            "--threshold",
            "loudness=1",
        ]
    )
    assert args.func(args) == 2 and "loudness" in capsys.readouterr().err


def test_an_s3_head_declares_its_dimensions_so_the_separation_gate_is_checked_at_start(tiny_backbone, trained, bucket):
    import storage
    from curation.stages.pipeline import StartupError, preflight
    from schemas.config import CurateConfig, layered

    folder = f"s3://{bucket}/heads/v1"
    storage.put_dir(trained.checkpoint.parent, folder)
    for head in (folder, f"{folder}/quality_head.pt"):  # a folder holding the head, or the file itself
        assert W2vBertQualityScorer.dimensions_for(ModelSpec(name="w2vbert", options={"head": head})) == DIMS
    cfg = layered(
        CurateConfig,
        {"input": "in", "output": "out"},
        {"quality": {"model": {"name": "w2vbert", "checkpoint": str(tiny_backbone), "options": {"head": folder}}}},
        overrides=["quality.thresholds={}", "separation.gate.dimension=bandwidth"],
    )
    with pytest.raises(StartupError, match="^separation.gate.dimension: the w2vbert scorer does not score 'bandwidth'"):
        preflight(cfg)
