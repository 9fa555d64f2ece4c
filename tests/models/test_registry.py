"""One registry builds every model wrapper from a spec; its names and weight checks cost no model runtime."""

import importlib
import inspect
import subprocess
import sys

import pytest

from models import registry
from models.checkpoints import CheckpointUnavailableError
from models.registry import FAMILIES, UnknownModelError, model_class
from schemas.config import CurateConfig, ModelSpec
from tests.conftest import DATA

# what the curation families' protocols (models/protocols.py) call on an instance
FAMILY_METHODS = {
    "separator": ("vocals", "separate", "native_rate"),
    "vad": ("speech_probs",),
    "quality": ("score",),
    "asr": ("transcribe",),
    "speaker": ("embed",),
}
ALL = [(family, name) for family, names in FAMILIES.items() for name in names]


def test_every_model_a_curation_config_names_is_a_registered_family():
    assert set(FAMILY_METHODS) <= set(FAMILIES)
    assert {family for _, family, _ in CurateConfig(input="i", output="o").model_specs()} == set(FAMILY_METHODS)


@pytest.mark.parametrize(("family", "name"), ALL, ids=[f"{f}:{n}" for f, n in ALL])
def test_every_registered_class_builds_from_a_spec_and_checks_its_weights_without_loading(family, name):
    cls = model_class(family, name)
    module, _, attribute = FAMILIES[family][name].partition(":")
    assert inspect.isclass(cls) and cls is getattr(importlib.import_module(module), attribute)
    for method in ("from_spec", "preflight"):
        assert isinstance(inspect.getattr_static(cls, method), classmethod), (cls, method)
    assert list(inspect.signature(cls.preflight).parameters)[:2] == ["spec", "setting"]
    for method in FAMILY_METHODS.get(family, ()):
        assert callable(getattr(cls, method, None)), (cls, method)
    if family == "separator":
        assert isinstance(inspect.getattr_static(cls, "native_rate"), classmethod)
    if family == "asr":
        assert isinstance(cls.writes_speaker_turns, bool)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_unknown_name_is_one_line_naming_the_setting_and_the_choices(family):
    with pytest.raises(UnknownModelError) as info:
        registry.preflight(family, ModelSpec(name="nope"), "some.setting")
    message = str(info.value)
    assert message == (
        f"some.setting.name: unknown {family} model 'nope'; choose one of {', '.join(FAMILIES[family])}, "
        "or name your own as 'package.module:Class'"
    )
    with pytest.raises(UnknownModelError, match="^some.setting.name: unknown"):
        registry.build(family, ModelSpec(name="nope"), "some.setting")


def test_a_module_class_name_is_a_wrapper_of_ones_own_and_a_wrong_one_is_one_line():
    from tests.curation.faulty_vad import FaultyVad

    assert registry.model_class("vad", "tests.curation.faulty_vad:FaultyVad") is FaultyVad
    with pytest.raises(UnknownModelError, match=r"^vad.name: cannot import 'tests.nowhere:Vad': No module named"):
        registry.model_class("vad", "tests.nowhere:Vad", "vad")


def test_an_unknown_family_is_one_line_naming_the_setting():
    with pytest.raises(UnknownModelError) as info:
        model_class("vocoder", "hifigan", "vocoder.model")
    assert str(info.value) == f"vocoder.model: unknown model family 'vocoder'; known: {', '.join(FAMILIES)}"
    assert isinstance(info.value, ValueError)


def test_a_weight_check_names_the_setting_it_was_given(tmp_path):
    with pytest.raises(CheckpointUnavailableError, match=r"--set my\.separator\.checkpoint="):
        registry.preflight("separator", ModelSpec(name="spleeter", checkpoint=str(tmp_path)), "my.separator")
    with pytest.raises(CheckpointUnavailableError, match=r"my\.scorer\.checkpoint"):
        registry.preflight("quality", ModelSpec(name="dnsmos", checkpoint=str(tmp_path)), "my.scorer")


def test_registered_classes_and_the_local_profile_checks_import_no_model_runtime():
    """Importing every wrapper class, checking the local profile's weights and asking the separator's rate must not
    import torch, ONNX Runtime or pocketsphinx (~250 MB a driver would hold for the whole run)."""
    code = (
        "import sys\n"
        "from models import registry\n"
        "from schemas.config import CurateConfig\n"
        "classes = [registry.model_class(f, n) for f, names in registry.FAMILIES.items() for n in names]\n"
        "cfg = CurateConfig(input='in', output='out')\n"
        "for setting, family, spec in cfg.model_specs():\n"
        "    registry.preflight(family, spec, setting)\n"
        "assert registry.model_class('separator', 'spleeter').native_rate(cfg.separation.model) == 44100\n"
        "sys.exit(sorted({'torch', 'onnxruntime', 'pocketsphinx'} & set(sys.modules)) or None)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=DATA.parents[1], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
