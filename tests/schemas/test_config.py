import pytest
from pydantic import ValidationError

from schemas.config import CurateConfig, load_config, parse_override


def test_defaults_are_the_local_profile():
    cfg = CurateConfig(input="in", output="out")
    assert cfg.separation.model.name == "spleeter"
    assert cfg.quality.model.name == "dnsmos"
    assert cfg.transcription.model.name == "pocketsphinx"
    assert (cfg.segmentation.min_s, cfg.segmentation.max_s) == (3.0, 30.0)


def test_layers_and_overrides_merge_in_order(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("input: a\noutput: b\nsegmentation: {min_s: 2.0}\nquality: {thresholds: {overall: 3.0}}\n")
    cfg = load_config({"input": "x", "output": "y"}, job, overrides=["segmentation.max_s=20", "quality.enabled=false", "output=s3://b/p"])
    assert cfg.input == "a" and cfg.output == "s3://b/p"
    assert cfg.segmentation.min_s == 2.0 and cfg.segmentation.max_s == 20.0
    assert cfg.quality.enabled is False and cfg.quality.thresholds == {"overall": 3.0}


def test_override_values_are_typed():
    assert parse_override("a.b=1.5") == (["a", "b"], 1.5)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    with pytest.raises(ValueError, match="key.path=value"):
        parse_override("novalue")


@pytest.mark.parametrize(
    "override, field",
    [("segmentation.min_s=40", "min_s"), ("separation.overlap_s=20", "overlap_s"), ("segmentation.nonsense=1", "nonsense"), ("decode.sample_rate=-1", "sample_rate")],
)
def test_bad_configuration_fails_naming_the_field(override, field):
    with pytest.raises(ValidationError, match=field):
        load_config({"input": "i", "output": "o"}, overrides=[override])


def test_setting_one_field_of_a_section_keeps_the_sections_other_defaults():
    cfg = load_config({"input": "i", "output": "o"}, {"segmentation": {"resources": {"batch_size": 2}}}, overrides=["quality.model.batch_size=4"])
    assert cfg.segmentation.resources.batch_size == 2 and cfg.segmentation.resources.num_cpus == 0.25
    assert cfg.quality.model.name == "dnsmos" and cfg.quality.model.batch_size == 4


def test_a_layer_states_thresholds_whole_and_an_override_edits_one():
    cfg = load_config({"input": "i", "output": "o"}, {"quality": {"thresholds": {"snr": 3.0}}})
    assert cfg.quality.thresholds == {"snr": 3.0}
    cfg = load_config({"input": "i", "output": "o"}, overrides=["quality.thresholds.snr=3.0"])
    assert cfg.quality.thresholds == {"overall": 2.8, "recording_quality": 3.2, "snr": 3.0}
