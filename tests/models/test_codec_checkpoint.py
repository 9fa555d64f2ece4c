"""Loading and saving codec weights in the released format: strict, one-line errors; both weight-norm styles; a save
that reproduces the reference's file layout; a preflight that needs no torch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoints import CheckpointUnavailableError
from models.codec import S2Codec
from models.codec.checkpoint import RandomWeightsWarning, load_codec, read_state, save_codec
from models.codec.weights import CheckpointMismatchError
from schemas.config import ModelSpec

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden" / "codec"


@pytest.fixture(autouse=True)
def quiet_random_weights():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        yield


def raw(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def write_checkpoint(folder: Path, state: dict[str, torch.Tensor], config: str = "reduced") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "codec.pth")
    shutil.copy(GOLDEN / config / "codec.json", folder / "codec.json")
    return folder / "codec.pth"


def decode_random_codes(checkpoint: Path) -> np.ndarray:
    codec = S2Codec.from_spec(ModelSpec(name="s2-codec", checkpoint=str(checkpoint), device="cpu"))
    return codec.decode([np.load(GOLDEN / "reduced" / "io.npz")["random_codes"]])[0]


def test_save_then_load_gives_the_golden_file_back(tmp_path):
    golden = raw(GOLDEN / "reduced" / "codec.pth")  # flat, as the reference's modded_dac.py loads s2-pro's codec.pth
    model = load_codec(GOLDEN / "reduced" / "codec.pth")
    saved = save_codec(model, tmp_path / "out")
    written = raw(saved)
    assert list(written) == list(golden)  # the same keys, weight-norm styles and order
    for key, tensor in golden.items():
        assert written[key].dtype == torch.float32
        assert torch.equal(written[key], tensor.float()), key
    assert json.loads((tmp_path / "out" / "codec.json").read_text()) == json.loads(
        (GOLDEN / "reduced" / "codec.json").read_text()
    )
    again = load_codec(saved)
    for (name, a), b in zip(again.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_training_checkpoint_keeps_only_the_generator(tmp_path):
    wrapped = raw(GOLDEN / "tiny" / "codec.pth")
    assert "discriminator.mpd.0.weight" in wrapped["state_dict"]
    saved = save_codec(load_codec(GOLDEN / "tiny" / "codec.pth"), tmp_path)
    assert list(raw(saved)) == [
        k.removeprefix("generator.") for k in wrapped["state_dict"] if k.startswith("generator.")
    ]
    assert list(read_state(GOLDEN / "tiny" / "codec.pth")) == list(raw(saved))


def test_both_weight_norm_styles_load_to_the_same_codec(tmp_path):
    def swapped(key: str) -> str:
        for new, old in (
            ("parametrizations.weight.original0", "weight_g"),
            ("parametrizations.weight.original1", "weight_v"),
        ):
            if key.endswith(new):
                return key.removesuffix(new) + old
            if key.endswith("." + old):
                return key.removesuffix(old) + new
        return key

    golden = raw(GOLDEN / "reduced" / "codec.pth")
    other = {swapped(k): v for k, v in golden.items()}
    assert (
        "encoder.block.0.conv.weight_g" in other
        and "quantizer.quantizer.quantizers.0.in_proj.parametrizations.weight.original0" in other
    )
    np.testing.assert_array_equal(
        decode_random_codes(write_checkpoint(tmp_path, other)), decode_random_codes(GOLDEN / "reduced")
    )


MISSING = "decoder.model.1.block.0.alpha"


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s: s.pop(MISSING), ["missing keys (1): " + MISSING]),
        (
            lambda s: s.update({"decoder.model.9.conv.bias": torch.zeros(1)}),
            ["unexpected keys (1): decoder.model.9.conv.bias"],
        ),
        (
            lambda s: s.update({MISSING: torch.ones(1, 3, 1)}),
            [f"mis-shaped keys (1): {MISSING} (1, 3, 1) where (1, 16, 1) is expected"],
        ),
        (
            lambda s: s.update({"quantizer.quantizer.quantizers.0.in_proj.weight_g": torch.ones(5, 1, 1)}),
            ["(5, 1, 1) where (4, 1, 1)"],
        ),
    ],
    ids=["missing", "unexpected", "mis-shaped", "mis-shaped-old-style"],
)
def test_a_checkpoint_that_does_not_fit_fails_in_one_line_naming_the_keys(tmp_path, change, expected):
    state = raw(GOLDEN / "reduced" / "codec.pth")
    change(state)
    with pytest.raises(CheckpointMismatchError) as err:
        load_codec(write_checkpoint(tmp_path, state))
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message
    for part in expected:
        assert part in message


def test_without_a_sidecar_the_released_config_applies_and_shapes_are_checked(tmp_path):
    shutil.copy(GOLDEN / "tiny" / "codec.pth", tmp_path / "codec.pth")
    with pytest.raises(CheckpointMismatchError) as err:
        load_codec(tmp_path / "codec.pth")
    message = str(err.value)
    assert "\n" not in message and "the released S2 config" in message
    for what in ("missing keys", "mis-shaped keys"):  # a count and the first few keys of each kind
        assert re.search(what + r" \(\d{3}\): [^;]+, \.\.\.", message)


def test_a_broken_sidecar_fails_the_preflight(tmp_path):
    shutil.copy(GOLDEN / "tiny" / "codec.pth", tmp_path / "codec.pth")
    (tmp_path / "codec.json").write_text(json.dumps({"encoder_dim": 4, "heads": 3}))
    with pytest.raises(
        CheckpointMismatchError, match=r"codec\.json is not a codec config: .*unknown fields \['heads'\]"
    ):
        S2Codec.preflight(ModelSpec(name="s2-codec", checkpoint=str(tmp_path)))


def test_random_weights_say_so_on_load(tmp_path):
    with pytest.warns(RandomWeightsWarning, match="random-init"):
        load_codec(GOLDEN / "tiny" / "codec.pth")


def test_a_folded_model_is_not_saved(tmp_path):
    model = load_codec(GOLDEN / "tiny" / "codec.pth").fold_weight_norm()
    with pytest.raises(ValueError, match="folded weight norm"):
        save_codec(model, tmp_path)
    assert not (tmp_path / "codec.pth").exists()


@pytest.mark.parametrize("checkpoint", [None, "/nonexistent/s2-pro", str(GOLDEN)])
def test_preflight_names_the_setting_when_the_weights_are_missing(checkpoint):
    with pytest.raises(CheckpointUnavailableError) as err:
        S2Codec.preflight(ModelSpec(name="s2-codec", checkpoint=checkpoint))
    message = str(err.value)
    assert "\n" not in message and "codec.model.checkpoint" in message and "s2 codec init --tiny" in message


def test_preflight_names_the_setting_it_is_given():
    with pytest.raises(CheckpointUnavailableError, match=r"tokenize\.codec\.checkpoint"):
        S2Codec.preflight(ModelSpec(name="s2-codec", checkpoint=None), "tokenize.codec")


def test_preflight_rejects_an_unknown_name():
    with pytest.raises(ValueError, match="codec.model.name: unknown codec 'dac'"):
        S2Codec.preflight(ModelSpec(name="dac", checkpoint=str(GOLDEN / "tiny")))


def test_preflight_imports_no_torch():
    script = (
        "import sys; from models.codec import S2Codec; from schemas.config import ModelSpec; "
        f"S2Codec.preflight(ModelSpec(name='s2-codec', checkpoint={str(GOLDEN / 'reduced')!r})); "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=60).returncode == 0
