"""Checkpoint folders: the tiny random one, the wrapper built from a ModelSpec, and every way a folder can be
wrong failing with one line that names what is wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from models.checkpoints import CheckpointUnavailableError
from models.dual_ar import S2DualAR, from_s2_checkpoint, init_tiny, save_s2_checkpoint
from models.dual_ar.config import ConfigError
from models.dual_ar.tokens import TokenizerError
from models.dual_ar.weights import CheckpointFormatError
from schemas.config import ModelSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return init_tiny(tmp_path_factory.mktemp("tiny"), 0, num_codebooks=4, codebook_size=16, max_seq_len=256)


@pytest.fixture
def copy(tiny, tmp_path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny, folder)
    return folder


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


def edit_weights(folder: Path, edit) -> None:
    shard = next(folder.glob("model-*.safetensors"))
    tensors = load_file(shard)
    edit(tensors)
    save_file(tensors, shard)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    index["weight_map"] = dict.fromkeys(tensors, shard.name)
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def test_dual_ar_tiny_checkpoint_is_marked_random_and_round_trips(tiny, tmp_path):
    config = json.loads((tiny / "config.json").read_text())
    assert config["model_type"] == "fish_qwen3_omni" and config["s2data"]["random_init"] is True
    model, tokenizer = from_s2_checkpoint(tiny)
    assert model.config.random_init and not model.training
    saved = save_s2_checkpoint(model, tokenizer, tmp_path / "again")
    again, _ = from_s2_checkpoint(saved)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert json.loads((saved / "config.json").read_text()) == config


def test_dual_ar_config_keeps_released_fields_it_does_not_use(copy, tmp_path):
    edit_config(copy, lambda c: c.update(architectures=["FishQwen3Omni"]) or c["text_config"].update(dropout=0.0))
    model, tokenizer = from_s2_checkpoint(copy)
    written = json.loads((save_s2_checkpoint(model, tokenizer, tmp_path / "out") / "config.json").read_text())
    assert written["architectures"] == ["FishQwen3Omni"] and written["text_config"]["dropout"] == 0.0


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c.update(model_type="dual_ar"), "model_type is 'dual_ar', expected 'fish_qwen3_omni'"),
        (lambda c: c["text_config"].pop("n_head"), "missing field text_config.n_head"),
        (lambda c: c["audio_decoder_config"].update(n_layer="two"), "n_layer must be a positive integer, got 'two'"),
        (
            lambda c: c["audio_decoder_config"].update(vocab_size=32),
            "spans 16 tokens, but audio_decoder_config.vocab_size (the codebook size) is 32",
        ),
        (
            lambda c: c.update(semantic_start_token_id=269, semantic_end_token_id=284),
            "semantic tokens are ids 268..283, config.json says 269..284",
        ),
    ],
)
def test_dual_ar_bad_config_is_one_line(copy, edit, expected):
    edit_config(copy, edit)
    with pytest.raises((ConfigError, TokenizerError)) as exc:
        from_s2_checkpoint(copy)
    assert expected in one_line(exc)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.pop("text_model.model.norm.weight"), "missing keys text_model.model.norm.weight"),
        (
            lambda t: t.update({"audio_decoder.extra.weight": torch.zeros(2)}),
            "unexpected keys audio_decoder.extra.weight",
        ),
        (
            lambda t: t.update({"audio_decoder.output.weight": torch.zeros(3, 32)}),
            "wrong shapes audio_decoder.output.weight (3, 32) (model (16, 32))",
        ),
    ],
)
def test_dual_ar_weights_that_do_not_fit_are_one_line(copy, edit, expected):
    edit_weights(copy, edit)
    with pytest.raises(CheckpointFormatError) as exc:
        from_s2_checkpoint(copy)
    assert expected in one_line(exc)


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda f: shutil.rmtree(f), "is not a folder"),
        (lambda f: (f / "tokenizer.json").unlink(), "lacks tokenizer.json"),
        (lambda f: next(f.glob("model-*.safetensors")).unlink(), "lacks model-00001-of-00001.safetensors"),
    ],
)
def test_dual_ar_preflight_names_the_setting_in_one_line(copy, breakage, expected):
    breakage(copy)
    with pytest.raises(CheckpointUnavailableError) as exc:
        S2DualAR.preflight(ModelSpec(name="s2-dual-ar", checkpoint=str(copy)), "tts.model")
    text = one_line(exc)
    assert "tts.model.checkpoint" in text and expected in text


def test_dual_ar_hub_id_is_found_in_the_local_cache(tiny, tmp_path, monkeypatch):
    """A hub id resolves to its snapshot in the Hugging Face cache, offline (HF_HUB_OFFLINE=1 in the tests)."""
    from huggingface_hub import constants

    repo = tmp_path / "models--acme--s2-tiny"
    shutil.copytree(tiny, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    spec = ModelSpec(name="s2-dual-ar", checkpoint="acme/s2-tiny", options={"max_new_tokens": 2})
    S2DualAR.preflight(spec)
    assert S2DualAR.from_spec(spec).model_id == "s2-dual-ar:acme/s2-tiny+random-init"


def test_dual_ar_preflight_imports_no_torch(tiny):
    code = (
        "import sys\n"
        "from models.dual_ar import S2DualAR\n"
        "from schemas.config import ModelSpec\n"
        f"S2DualAR.preflight(ModelSpec(name='s2-dual-ar', checkpoint={str(tiny)!r}))\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_dual_ar_wrapper_synthesizes_codes_whatever_the_batch(tiny):
    options = {"top_k": 1, "max_new_tokens": 6, "seed": 3}
    one = S2DualAR.from_spec(ModelSpec(name="s2-dual-ar", checkpoint=str(tiny), batch_size=1, options=options))
    two = S2DualAR.from_spec(ModelSpec(name="s2-dual-ar", checkpoint=str(tiny), batch_size=2, options=options))
    assert one.random_init and one.model_id == f"s2-dual-ar:{tiny.name}+random-init"
    texts = ["<|speaker:0|>hello [laugh]", "bye"]
    a, b = one.synthesize(texts), two.synthesize(texts)
    assert all(
        x.dtype == np.int16 and x.shape[0] == 4 and x.shape[1] <= 6 and np.array_equal(x, y) for x, y in zip(a, b)
    )
    with pytest.raises(ValueError, match="unknown options top_q") as exc:
        S2DualAR.from_spec(ModelSpec(name="s2-dual-ar", checkpoint=str(tiny), options={"top_q": 1}))
    one_line(exc)
