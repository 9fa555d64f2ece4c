"""Import the reference's modules without their packages' __init__ files (run inside the reference venv only).

`dac/__init__.py` and `audiotools/__init__.py` import torchaudio, which has no build for the torch we pin, and a
dozen more packages. The codec needs only `dac.nn.layers`, `dac.nn.quantize`, `dac.model.base` and audiotools'
`BaseModel`: register empty parent packages pointing at the installed folders, so those submodules load from
their own files unchanged. Then put the fish-speech export ($FISH_SPEECH_SRC) on the path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
import types
from pathlib import Path

SITE = Path(sysconfig.get_paths()["purelib"])


def _empty_package(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = [str(SITE.joinpath(*name.split(".")))]
    sys.modules[name] = module
    return module


def _module_from_file(name: str) -> types.ModuleType:
    path = SITE.joinpath(*name.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def install() -> None:
    audiotools = _empty_package("audiotools")
    # only named in type hints and in CodecMixin.compress, which the fixtures never call
    audiotools.AudioSignal = type("AudioSignal", (), {})
    ml = _empty_package("audiotools.ml")
    _empty_package("audiotools.ml.layers")
    ml.BaseModel = _module_from_file("audiotools.ml.layers.base").BaseModel
    audiotools.ml = ml
    for name in ("dac", "dac.nn", "dac.model"):
        _empty_package(name)
    sys.path.insert(0, os.environ["FISH_SPEECH_SRC"])


install()
