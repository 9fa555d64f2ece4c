from typing import Any

import pytest
from pydantic import ValidationError

from schemas.config import CurateConfig, Resources, apply_override, layered, merge_layer, parse_value

BASE = {"input": "i", "output": "o"}


def test_defaults_are_the_local_profile():
    cfg = CurateConfig(input="in", output="out")
    assert cfg.profile == "local"
    assert cfg.separation.model.name == "spleeter"
    assert cfg.quality.model.name == "dnsmos"
    assert cfg.transcription.model.name == "pocketsphinx"
    assert (cfg.segmentation.min_s, cfg.segmentation.max_s) == (1.0, 30.0)


def test_layers_and_overrides_merge_in_order():
    job = {"input": "a", "output": "b", "segmentation": {"min_s": 2.0}, "quality": {"thresholds": {"overall": 3.0}}}
    cfg = layered(
        CurateConfig,
        {"input": "x", "output": "y"},
        job,
        overrides=["segmentation.max_s=20", "quality.enabled=false", "output=s3://b/p"],
    )
    assert cfg.input == "a" and cfg.output == "s3://b/p"
    assert cfg.segmentation.min_s == 2.0 and cfg.segmentation.max_s == 20.0
    assert cfg.quality.enabled is False and cfg.quality.thresholds == {"overall": 3.0}


def test_override_values_are_typed():
    assert parse_value(float, "1.5") == 1.5 and parse_value(list[int], "[1, 2]") == [1, 2]
    assert apply_override(CurateConfig, {}, "segmentation.max_s=1.5")["segmentation"]["max_s"] == 1.5
    assert apply_override(CurateConfig, {}, 'extensions=["wav", "flac"]')["extensions"] == ["wav", "flac"]
    with pytest.raises(ValueError, match="key.path=value"):
        apply_override(CurateConfig, {}, "novalue")


@pytest.mark.parametrize(
    ("override", "path", "value"),
    [
        # a str field keeps the text as written, whatever it would parse to
        (
            "transcription.model.options.prompt=Transcribe this: turns",
            ("transcription", "model", "options", "prompt"),
            "Transcribe this: turns",
        ),
        ("transcription.language=no", ("transcription", "language"), "no"),
        ("transcription.language=null", ("transcription", "language"), None),
        ("ray.address=123", ("ray", "address"), "123"),
        ("transcription.model.checkpoint=true", ("transcription", "model", "checkpoint"), "true"),
        # numbers, booleans and null parse, by the field's type
        ("segmentation.max_s=20", ("segmentation", "max_s"), 20.0),
        ("shards.samples_per_shard=500", ("shards", "samples_per_shard"), 500),
        ("quality.thresholds.overall=3", ("quality", "thresholds", "overall"), 3.0),
        ("quality.enabled=false", ("quality", "enabled"), False),
        ("transcription.speaker_model=null", ("transcription", "speaker_model"), None),
        ("ray.fuse_stages=null", ("ray", "fuse_stages"), None),
        # a mapping of anything: JSON where the text is JSON, else the text
        (
            "transcription.model.options.max_new_tokens=256",
            ("transcription", "model", "options", "max_new_tokens"),
            256,
        ),
        ("transcription.model.options.sample=true", ("transcription", "model", "options", "sample"), True),
        ("transcription.model.options.system=null", ("transcription", "model", "options", "system"), None),
    ],
)
def test_a_set_value_is_parsed_by_the_type_its_field_declares(override, path, value):
    node: Any = layered(CurateConfig, BASE, overrides=[override]).model_dump()
    for key in path:
        node = node[key]
    assert node == value and type(node) is type(value)


def test_parse_value_keeps_text_its_type_does_not_accept():
    assert parse_value(str, "no") == "no" and parse_value(str | None, "a: b") == "a: b"
    assert parse_value(str | None, "null") is None and parse_value(bool, "true") is True and parse_value(int, "7") == 7
    assert (
        parse_value(Any, "[1, 2]") == [1, 2] and parse_value(Any, "a: b") == "a: b" and parse_value(Any, "no") == "no"
    )
    assert parse_value(int, "seven") == "seven"  # left as text: the final validation names the field


@pytest.mark.parametrize(
    "override, field",
    [
        ("segmentation.min_s=40", "min_s"),
        ("separation.overlap_s=20", "overlap_s"),
        ("segmentation.nonsense=1", "nonsense"),
        ("decode.sample_rate=-1", "sample_rate"),
        ("shards.samples_per_shard=seven", "samples_per_shard"),
        ("separation.gate.vocals_min.pitch=3", "separation.gate.vocals_min"),
    ],
)
def test_bad_configuration_fails_naming_the_field(override, field):
    with pytest.raises(ValidationError, match=field):
        layered(CurateConfig, BASE, overrides=[override])


def test_setting_one_field_of_a_section_keeps_the_sections_other_defaults():
    cfg = layered(
        CurateConfig, BASE, {"segmentation": {"resources": {"batch_size": 2}}}, overrides=["quality.model.batch_size=4"]
    )
    assert cfg.segmentation.resources.batch_size == 2 and cfg.segmentation.resources.num_cpus == 0.25
    assert cfg.segmentation.resources == Resources(num_cpus=0.25, batch_size=2)
    assert cfg.segmentation.min_s == 1.0 and cfg.segmentation.model.name == "silero"
    assert (
        cfg.quality.model.name == "dnsmos"
        and cfg.quality.model.batch_size == 4
        and cfg.quality.model.options == {"arena": False}
    )


def test_a_layer_states_thresholds_whole_and_an_override_edits_one():
    cfg = layered(CurateConfig, BASE, {"quality": {"thresholds": {"snr": 3.0}}})
    assert cfg.quality.thresholds == {"snr": 3.0}
    cfg = layered(CurateConfig, BASE, overrides=["quality.thresholds.snr=3.0"])
    assert cfg.quality.thresholds == {"overall": 2.8, "recording_quality": 3.2, "snr": 3.0}
    cfg = layered(
        CurateConfig, BASE, {"quality": {"thresholds": {"snr": 3.0}}}, overrides=["quality.thresholds.overall=2.0"]
    )
    assert cfg.quality.thresholds == {"snr": 3.0, "overall": 2.0}


def test_a_layer_states_model_options_whole_while_the_model_section_merges_field_by_field():
    first = {"quality": {"model": {"name": "w2vbert", "batch_size": 64, "options": {"head": "a.pt", "extra": 1}}}}
    second = {"quality": {"model": {"options": {"head": "b.pt"}}}}
    cfg = layered(CurateConfig, BASE, first, second)
    assert cfg.quality.model.options == {"head": "b.pt"}
    assert (cfg.quality.model.name, cfg.quality.model.batch_size, cfg.quality.model.device) == ("w2vbert", 64, "cpu")
    cfg = layered(CurateConfig, BASE, first, overrides=["quality.model.options.head=c.pt"])
    assert cfg.quality.model.options == {"head": "c.pt", "extra": 1}


def test_merge_layer_follows_the_schema_types():
    merged = merge_layer(CurateConfig, {}, {"segmentation": {"resources": {"num_cpus": 1.0}}, "extensions": ["wav"]})
    # a section a layer states in part starts from its defaults; a list is replaced whole
    assert merged["segmentation"]["resources"] == {"num_cpus": 1.0, "num_gpus": 0.0, "concurrency": 1, "batch_size": 8}
    assert merged["segmentation"]["min_s"] == 1.0 and merged["extensions"] == ["wav"]
    # an optional section: null replaces it, a mapping merges into its default
    assert merge_layer(CurateConfig, merged, {"ray": {"fuse_stages": None}})["ray"]["fuse_stages"] is None
    fused = merge_layer(CurateConfig, {}, {"ray": {"fuse_stages": {"num_cpus": 1.0}}})["ray"]["fuse_stages"]
    assert fused == {"num_cpus": 1.0, "num_gpus": 0.0, "concurrency": 2, "batch_size": 1}
    # layers do not mutate what they merge into
    base = {"quality": {"thresholds": {"overall": 1.0}}}
    merge_layer(CurateConfig, base, {"quality": {"thresholds": {"snr": 2.0}}})
    assert base == {"quality": {"thresholds": {"overall": 1.0}}}
