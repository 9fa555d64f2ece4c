"""Our Dual-AR model against the reference (fishaudio/fish-speech at the pinned commit), through the fixture that
scripts/golden/dual_ar.py wrote with the reference: the released-format checkpoint loads through our strict
loader, and our training forward, prompt forward, fast-AR steps and sampling give the reference's numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.dual_ar.checkpoint import from_s2_checkpoint, save_s2_checkpoint
from models.dual_ar.generate import generate
from models.dual_ar.sampling import SamplingParams
from models.dual_ar.tokens import byte_level_tokenizer, extend_tokenizer, save_tokenizer

GOLDEN = Path(__file__).parent.parent / "data" / "golden" / "dual_ar"
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The golden weights and config, with the tiny tokenizer whose ids the fixture was laid out for."""
    folder = tmp_path_factory.mktemp("golden_dual_ar")
    for f in GOLDEN.iterdir():
        if f.name.startswith(("model", "config")):
            shutil.copy(f, folder)
    save_tokenizer(extend_tokenizer(byte_level_tokenizer(), 16), folder)
    return folder


@pytest.fixture(scope="module")
def gold() -> dict[str, torch.Tensor]:
    return load_file(GOLDEN / "golden.safetensors")


@pytest.fixture(scope="module")
def model(checkpoint):
    return from_s2_checkpoint(checkpoint)[0]


@pytest.fixture(scope="module")
def unscaled(checkpoint):
    """The reference's training forward does not scale the codebook embeddings."""
    return from_s2_checkpoint(checkpoint, codebook_embedding_scale=1.0)[0]


def test_dual_ar_golden_checkpoint_loads_strictly_with_the_released_config(model, checkpoint):
    c = model.config
    assert (c.vocab_size, c.num_codebooks, c.codebook_size, c.slow.dim, c.fast.dim) == (320, 4, 16, 32, 24)
    assert (c.semantic_begin_id, c.semantic_end_id, c.rope_dtype) == (268, 283, "bfloat16")
    assert c.embedding_scale == pytest.approx(5**-0.5)
    assert isinstance(model.fast_project_in, torch.nn.Linear)  # the fast AR is narrower than the slow one
    files = {
        **load_file(checkpoint / "model-00001-of-00002.safetensors"),
        **load_file(checkpoint / "model-00002-of-00002.safetensors"),
    }
    ours = {k: v.bfloat16() for k, v in model.state_dict().items()}
    assert len(ours) == len(files)
    assert torch.equal(ours["layers.1.attention.wqkv.weight"], files["text_model.model.layers.1.attention.wqkv.weight"])
    assert torch.equal(
        ours["fast_layers.0.feed_forward.w2.weight"], files["audio_decoder.layers.0.feed_forward.w2.weight"]
    )
    assert torch.equal(ours["codebook_embeddings.weight"], files["audio_decoder.codebook_embeddings.weight"])


@pytest.mark.parametrize("sample", ["a", "b"])
def test_dual_ar_golden_training_forward_matches_the_reference(unscaled, gold, sample):
    tokens, labels = gold[f"train.{sample}.tokens"], gold[f"train.{sample}.labels"]
    with torch.no_grad():
        out = unscaled(tokens[None], labels[None])
    torch.testing.assert_close(out.token_logits[0], gold[f"train.{sample}.token_logits"], **TOL)
    torch.testing.assert_close(out.codebook_logits, gold[f"train.{sample}.codebook_logits"], **TOL)
    assert out.codebook_logits.shape[0] == int(unscaled.is_semantic(labels[0]).sum())


def test_dual_ar_golden_packed_samples_each_match_the_reference_alone(unscaled, gold):
    """Both samples and some padding in one row: each sample's logits are those the reference computes for it alone."""
    a, b = ((gold[f"train.{s}.tokens"], gold[f"train.{s}.labels"]) for s in "ab")
    pad = 3
    inputs = torch.cat([a[0], b[0], torch.zeros(a[0].shape[0], pad, dtype=torch.long)], dim=1)
    labels = torch.cat([a[1], b[1], torch.full((a[1].shape[0], pad), -100)], dim=1)
    segments = torch.tensor([0] * a[0].shape[1] + [1] * b[0].shape[1] + [2] * pad)
    with torch.no_grad():
        out = unscaled(inputs[None], labels[None], segment_ids=segments[None])
    Ta = a[0].shape[1]
    torch.testing.assert_close(out.token_logits[0, :Ta], gold["train.a.token_logits"], **TOL)
    torch.testing.assert_close(out.token_logits[0, Ta : Ta + b[0].shape[1]], gold["train.b.token_logits"], **TOL)
    expected = torch.cat([gold["train.a.codebook_logits"], gold["train.b.codebook_logits"]])
    torch.testing.assert_close(out.codebook_logits, expected, **TOL)


def test_dual_ar_golden_scaled_forward_matches_the_reference_generation_forward(model, gold):
    """Our single forward (scaled by 1/sqrt(N+1), as configured) equals the reference's forward_generate."""
    with torch.no_grad():
        out = model(gold["prompt.tokens"][None])
    torch.testing.assert_close(out.token_logits[0], gold["prompt.logits"], **TOL)
    torch.testing.assert_close(out.hidden[0], gold["prompt.hidden"], **TOL)


def test_dual_ar_golden_fast_ar_matches_the_reference_step_by_step(model, gold):
    """The fast AR, teacher-forced in one pass and stepped through its KV cache, gives the reference's logits."""
    hidden, codes = gold["prompt.hidden"][-1:], gold["fast.codes"]
    with torch.no_grad():
        forced = model.forward_fast(hidden, codes[None])[0, 1:]
        caches = model.new_caches(1, model.config.num_codebooks, fast=True)
        x = torch.cat([model.fast_project_in(hidden)[:, None], model.fast_embeddings(codes[:1])[:, None]], dim=1)
        stepped = [model.fast_step(x, 0, caches)[0, -1]]
        for k in range(2, model.config.num_codebooks):
            stepped.append(model.fast_step(model.fast_embeddings(codes[k - 1 : k])[:, None], k, caches)[0, -1])
    torch.testing.assert_close(forced, gold["fast.logits"], **TOL)
    torch.testing.assert_close(torch.stack(stepped), gold["fast.logits"], **TOL)


def _settings(run: dict) -> SamplingParams:
    return SamplingParams(temperature=run["temperature"], top_p=run["top_p"], top_k=run["top_k"])


def _reference_codes(gold, i: int, im_end: int) -> torch.Tensor:
    tokens = gold[f"generate.{i}.tokens"]
    return tokens[1:, :-1] if tokens[0, -1] == im_end else tokens[1:]


def test_dual_ar_golden_generation_draws_the_reference_tokens(model, gold):
    """Same seed, same settings: the reference's tokens, codes and stopping point, frame for frame."""
    meta = json.loads((GOLDEN / "golden.json").read_text())
    for i, run in enumerate(meta["generate"]):
        codes = generate(
            model,
            [gold["prompt.tokens"]],
            im_end_id=meta["im_end_id"],
            max_new_tokens=run["max_new_tokens"],
            sampling=_settings(run),
            seed=run["seed"],
        )[0]
        assert torch.equal(codes, _reference_codes(gold, i, meta["im_end_id"]))
        assert gold[f"generate.{i}.tokens"][0, -1] == meta["im_end_id"]  # both runs stopped on <|im_end|>


def test_dual_ar_golden_generation_in_a_padded_batch_still_draws_the_reference_tokens(model, gold):
    meta = json.loads((GOLDEN / "golden.json").read_text())
    run = meta["generate"][0]
    prompt = gold["prompt.tokens"]
    codes = generate(
        model,
        [prompt[:, :7], prompt],
        im_end_id=meta["im_end_id"],
        max_new_tokens=run["max_new_tokens"],
        sampling=_settings(run),
        seed=[5, run["seed"]],
    )
    assert torch.equal(codes[1], _reference_codes(gold, 0, meta["im_end_id"]))


def test_dual_ar_golden_repetition_aware_sampling_changes_what_is_drawn(model, gold):
    """Without RAS the first run's seed draws other tokens: the reference resampled a repeat there, as we do."""
    meta = json.loads((GOLDEN / "golden.json").read_text())
    run = meta["generate"][0]
    sampling = SamplingParams(temperature=run["temperature"], top_p=run["top_p"], top_k=run["top_k"], ras_window=0)
    codes = generate(
        model,
        [gold["prompt.tokens"]],
        im_end_id=meta["im_end_id"],
        max_new_tokens=run["max_new_tokens"],
        sampling=sampling,
        seed=run["seed"],
    )[0]
    assert not torch.equal(codes, _reference_codes(gold, 0, meta["im_end_id"]))


def test_dual_ar_golden_save_writes_the_released_keys_and_tensors(model, checkpoint, tmp_path):
    tokenizer = extend_tokenizer(byte_level_tokenizer(), 16)
    out = save_s2_checkpoint(model, tokenizer, tmp_path / "saved", max_shard_bytes=40_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    golden_index = json.loads((GOLDEN / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(golden_index["weight_map"])
    assert len(set(index["weight_map"].values())) > 1
    assert index["metadata"]["total_size"] == golden_index["metadata"]["total_size"]
    saved = {k: v for f in set(index["weight_map"].values()) for k, v in load_file(out / f).items()}
    expected = {k: v for f in set(golden_index["weight_map"].values()) for k, v in load_file(GOLDEN / f).items()}
    for key, tensor in expected.items():
        assert saved[key].dtype == torch.bfloat16 and torch.equal(saved[key], tensor), key
    written = json.loads((out / "config.json").read_text())
    released = json.loads((GOLDEN / "config.json").read_text())
    assert {k: written[k] for k in released if k not in ("text_config", "audio_decoder_config")} == {
        k: v for k, v in released.items() if k not in ("text_config", "audio_decoder_config")
    }
    for section in ("text_config", "audio_decoder_config"):
        assert released[section].items() <= written[section].items()
    reloaded, _ = from_s2_checkpoint(out)
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))
