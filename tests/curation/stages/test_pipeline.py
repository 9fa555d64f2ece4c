"""Which stages a configuration runs, at which rates, and the start-up check of their models."""

import pickle

import pytest

from curation.stages.base import CurationStage
from curation.stages.pipeline import CurationPipeline, StartupError, decode_rate, preflight
from models.checkpoints import CheckpointUnavailableError
from schemas.config import CurateConfig, ModelSpec, layered
from schemas.rejects import Stage


def _config(*layers: dict, overrides: list[str] = ()) -> CurateConfig:
    return layered(CurateConfig, {"input": "in", "output": "out"}, *layers, overrides=overrides)


def test_the_default_pipeline_runs_every_stage_in_order_with_its_configured_batch_size():
    cfg = _config()
    pipeline = CurationPipeline.from_config(cfg)
    # separation per utterance, where the gate finds a background: after VAD
    assert [s.name for s in pipeline.models] == ["segmentation", "separation", "quality", "transcription"]
    assert (pipeline.decode.name, pipeline.encode.name) == ("decode", "encode")
    for stage in [pipeline.decode, *pipeline.models, pipeline.encode]:
        assert isinstance(stage, CurationStage) and isinstance(stage.name, Stage) and stage.on_error == "reject"
        assert stage.decl.reads and stage.decl.writes and stage.failure is cfg.failure
    assert [s.decl.runs_in for s in pipeline.stages] == ["task", *["actor"] * 4, "task", "writer", "writer"]
    assert [s.batch_size for s in pipeline.models] == [
        getattr(cfg, s.decl.config_key).resources.batch_size for s in pipeline.models
    ]
    assert pipeline.decode.batch_size == cfg.decode.resources.batch_size
    # ungated: every input separated whole, before VAD
    ungated = CurationPipeline.from_config(_config(overrides=["separation.gate=null"]))
    assert [s.name for s in ungated.models] == ["separation", "segmentation", "quality", "transcription"]


def test_the_separation_gate_needs_the_quality_model_and_its_dimension():
    with pytest.raises(StartupError, match="^separation.gate: decides on the quality model"):
        preflight(_config({"quality": {"enabled": False}}))
    with pytest.raises(StartupError, match="^separation.gate.dimension: the dnsmos scorer does not score 'pitch'"):
        preflight(_config(overrides=["separation.gate.dimension=pitch"]))
    # the minimums on the separated vocals: a dimension the scorer does not score fails at start, naming the setting
    with pytest.raises(
        StartupError, match="^separation.gate.vocals_min.speaker_consistency: the dnsmos scorer does not"
    ):
        preflight(_config(overrides=["separation.gate.vocals_min.speaker_consistency=3.0"]))
    preflight(_config({"quality": {"enabled": False}, "separation": {"gate": None}}))  # ungated: no need


def test_a_minimum_band_needs_the_quality_stage_that_applies_it():
    off = {"quality": {"enabled": False, "min_bandwidth_hz": 6000}, "separation": {"gate": None}}
    with pytest.raises(StartupError, match="^quality.min_bandwidth_hz: applied by the quality stage"):
        preflight(_config(off))
    preflight(_config({"quality": {"min_bandwidth_hz": 6000}}))


def test_decode_keeps_the_full_band_and_the_analysis_copy_is_made_once():
    # decode keeps each source's rate up to the cap
    assert decode_rate(_config()) == 48000
    pipeline = CurationPipeline.from_config(_config())
    # gated (the default): separation runs after VAD, so decode makes the copy VAD reads
    assert (pipeline.decode.sample_rate, pipeline.decode.analysis_rate) == (48000, 16000)
    separation = next(s for s in pipeline.models if s.name == "separation")
    assert (separation.analysis_rate, separation.max_output_rate) == (16000, 48000)
    # separating whole pieces before VAD: the separator makes it
    ungated = CurationPipeline.from_config(_config(overrides=["separation.gate=null"]))
    assert ungated.decode.analysis_rate is None and ungated.models[0].name == "separation"
    # without separation, decode makes it
    assert CurationPipeline.from_config(_config({"separation": {"enabled": False}})).decode.analysis_rate == 16000


def test_building_the_stages_loads_no_model_and_they_travel_as_they_are():
    """The driver builds the stages and ships them to the executor's processes: models load there, in setup()."""
    cfg = _config(
        overrides=["quality.model.name=w2vbert", "quality.model.options.head=/nowhere/head.pt", "quality.thresholds={}"]
    )
    pipeline = CurationPipeline.from_config(cfg)  # the head does not exist: nothing looked for it yet
    for stage in pipeline.models:
        assert not {"separator", "vad", "scorer", "transcriber", "embedder"} & set(vars(stage))
    again = pickle.loads(pickle.dumps(pipeline))
    assert [s.name for s in again.models] == [s.name for s in pipeline.models] and len(pickle.dumps(pipeline)) < 20_000
    with pytest.raises(CheckpointUnavailableError, match="/nowhere/head.pt"):
        preflight(cfg)


def test_a_disabled_stage_is_not_run_and_its_model_is_never_looked_for():
    cfg = _config(
        {
            "transcription": {"enabled": False, "model": {"name": "no-such-model"}},
            "quality": {"enabled": False},
            "separation": {"gate": None},  # the gate decides on quality scores
        }
    )
    pipeline = CurationPipeline.from_config(cfg)
    assert [s.name for s in pipeline.models] == ["separation", "segmentation"]
    preflight(cfg)  # no error: the unknown transcriber is never checked
    assert [setting for setting, _, _ in cfg.model_specs()] == ["separation.model", "segmentation.model"]


@pytest.mark.parametrize(
    ("override", "setting", "name"),
    [
        ("separation.model.name=nope", "separation.model.name", "separator model 'nope'"),
        ("segmentation.model.name=nope", "segmentation.model.name", "vad model 'nope'"),
        ("quality.model.name=nope", "quality.model.name", "quality model 'nope'"),
        ("transcription.model.name=nope", "transcription.model.name", "asr model 'nope'"),
        ("transcription.speaker_model.name=nope", "transcription.speaker_model.name", "speaker model 'nope'"),
    ],
)
def test_an_unknown_model_fails_at_start_naming_the_setting(override, setting, name):
    with pytest.raises(StartupError, match=rf"^{setting}: unknown {name}; choose one of ") as info:
        preflight(_config(overrides=[override]))
    assert "\n" not in str(info.value)


def test_model_specs_walk_every_enabled_model():
    specs = _config().model_specs()
    assert [(setting, family, spec.name) for setting, family, spec in specs] == [
        ("separation.model", "separator", "spleeter"),
        ("segmentation.model", "vad", "silero"),
        ("quality.model", "quality", "dnsmos"),
        ("transcription.model", "asr", "pocketsphinx"),
        ("transcription.speaker_model", "speaker", "resemblyzer"),
    ]
    assert all(isinstance(spec, ModelSpec) for _, _, spec in specs)
    no_speakers = _config(overrides=["transcription.speaker_model=null"]).model_specs()
    assert [setting for setting, _, _ in no_speakers][-1] == "transcription.model"


def test_a_threshold_on_a_dimension_the_scorer_lacks_fails_at_start(tmp_path):
    cfg = layered(CurateConfig, {"input": "i", "output": "o"}, overrides=["quality.thresholds.intelligibility=3.0"])
    with pytest.raises(
        StartupError,
        match=r"^quality\.thresholds\.intelligibility: the dnsmos scorer does not score 'intelligibility' \(it scores overall, snr, recording_quality\)$",
    ):
        preflight(cfg)


def test_the_w2vbert_head_tells_its_dimensions_without_torch(tiny_w2vbert, tmp_path):
    """The head's JSON config beside it is what the start-up check reads (the driver imports no torch)."""
    import subprocess
    import sys

    from models.quality.head import HeadConfig, QualityHead, save_head
    from tests.conftest import DATA

    head = save_head(
        tmp_path / "head", QualityHead(HeadConfig(["overall", "snr"], 32, 8, [3.0, 3.0], [1.0, 1.0], [3.0, 3.0]))
    )
    code = (
        "import sys\n"
        "from curation.stages.pipeline import StartupError, preflight\n"
        "from schemas.config import CurateConfig, layered\n"
        f"spec = {{'name': 'w2vbert', 'checkpoint': {str(tiny_w2vbert)!r}, 'options': {{'head': {str(head)!r}}}}}\n"
        "cfg = layered(CurateConfig, {'input': 'i', 'output': 'o', 'separation': {'enabled': False}, 'transcription': {'enabled': False},\n"
        "    'quality': {'model': spec, 'thresholds': {'speaker_consistency': 3.0}}})\n"
        "try:\n    preflight(cfg)\nexcept StartupError as exc:\n    print(exc)\n"
        "sys.exit('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=DATA.parents[1], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("quality.thresholds.speaker_consistency: the w2vbert scorer does not score"), r.stdout


def test_the_s2_profile_is_checked_without_torch_and_without_downloading(tmp_path):
    """The s2 start-up check looks the hub weights up (here: absent, offline) and loads no model runtime."""
    import os
    import subprocess
    import sys

    from tests.conftest import DATA

    code = (
        "import sys\n"
        "from jobs.config import curate_config\n"
        "from curation.stages.pipeline import preflight\n"
        "from models.checkpoints import CheckpointUnavailableError\n"
        "try:\n    preflight(curate_config('s2', direct={'input': 'i', 'output': 'o'}))\n"
        "except CheckpointUnavailableError as exc:\n    print(exc)\n"
        "sys.exit(sorted({'torch', 'transformers', 'demucs'} & set(sys.modules)) or None)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "empty-cache"))
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=DATA.parents[1], capture_output=True, text=True, timeout=120, env=env
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "'adefossez/HTDemucs' is not available" in r.stdout and "--set separation.model.checkpoint=" in r.stdout
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").rglob("*.safetensors"))
