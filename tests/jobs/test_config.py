"""Job configuration from files: the profile YAMLs and a user's job YAML, layered over the schema's defaults."""

import pytest
from pydantic import ValidationError

from jobs.config import CONFIG_DIR, ConfigFileError, curate_config, one_line, profile_layer, read_yaml
from schemas.config import CurateConfig

DIRECT = {"input": "i", "output": "o"}


def test_the_local_profile_is_the_schema_defaults():
    assert profile_layer("local") == {"profile": "local"}
    assert curate_config("local", direct=DIRECT) == CurateConfig(**DIRECT)
    assert curate_config(direct=DIRECT) == CurateConfig(**DIRECT)  # no profile named: local


def test_the_s2_profile_changes_only_what_it_states():
    cfg = curate_config("s2", direct=DIRECT)
    defaults = CurateConfig(**DIRECT)
    assert cfg.profile == "s2" and cfg.ray.fuse_stages is None and cfg.ray.object_store_mb is None
    assert (cfg.separation.model.name, cfg.quality.model.name, cfg.transcription.model.name) == (
        "htdemucs",
        "w2vbert",
        "qwen3-omni",
    )
    assert cfg.quality.thresholds == {"overall": 3.0} and cfg.quality.model.options == {"head": "quality_head.pt"}
    assert cfg.transcription.speaker_model.name == "wavlm" and cfg.decode.piece_s == 600
    # sections it does not state, and fields of the sections it does, keep the defaults
    assert cfg.shards == defaults.shards and cfg.segmentation.model == defaults.segmentation.model
    assert (
        cfg.segmentation.min_s == defaults.segmentation.min_s and cfg.decode.sample_rate == defaults.decode.sample_rate
    )
    assert cfg.segmentation.resources.num_gpus == 0.0 and cfg.segmentation.resources.batch_size == 16


def test_layers_apply_in_order_profile_job_direct_overrides(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(
        "profile: s2\ninput: a\noutput: b\nsegmentation: {min_s: 2.0}\nquality: {thresholds: {overall: 3.5}}\n"
    )
    cfg = curate_config(None, job, {"output": "c"}, ["segmentation.max_s=20", "output=s3://b/p"])
    assert cfg.profile == "s2" and cfg.quality.model.name == "w2vbert"  # the job names the profile
    assert cfg.input == "a" and cfg.output == "s3://b/p"
    assert (
        cfg.segmentation.min_s == 2.0 and cfg.segmentation.max_s == 20.0 and cfg.quality.thresholds == {"overall": 3.5}
    )
    assert curate_config("local", job, DIRECT).profile == "local"  # a profile given directly wins over the job's
    assert curate_config("local", job, DIRECT).quality.model.name == "dnsmos"


def test_an_override_edits_one_option_of_a_profile_and_keeps_its_text():
    cfg = curate_config(
        "s2",
        direct=DIRECT,
        overrides=["transcription.model.options.prompt=Transcribe this: turns", "transcription.language=no"],
    )
    assert cfg.transcription.model.options == {"max_new_tokens": 256, "prompt": "Transcribe this: turns"}
    assert cfg.transcription.language == "no"


def test_unknown_profiles_and_unusable_files_are_named(tmp_path):
    with pytest.raises(ConfigFileError, match=r"unknown profile 'nope' \(known: ([\w]+, )*local, ([\w]+, )*s2\b"):
        curate_config("nope", direct=DIRECT)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigFileError, match="list.yaml: expected a mapping of settings, got list"):
        read_yaml(tmp_path / "list.yaml")
    with pytest.raises(ConfigFileError, match="absent.yaml"):
        curate_config(None, tmp_path / "absent.yaml", DIRECT)
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml(tmp_path / "empty.yaml") == {}
    assert {"local", "s2"} <= {p.stem for p in CONFIG_DIR.glob("*.yaml")}


def test_a_bad_setting_is_one_line_naming_each_field():
    with pytest.raises(ValidationError) as info:
        curate_config("local", direct=DIRECT, overrides=["segmentation.nonsense=1", "decode.sample_rate=-1"])
    line = one_line(info.value)
    assert "\n" not in line and "segmentation.nonsense:" in line and "decode.sample_rate:" in line
    assert one_line(ConfigFileError("unknown profile 'x'")) == "unknown profile 'x'"
