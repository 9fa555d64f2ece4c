"""`s2 codec init --tiny`: a random tiny codec written through the real save path, loadable, labelled random-init."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from jobs import codec as codec_job
from models.codec import CodecConfig, S2Codec
from models.codec.checkpoint import RandomWeightsWarning
from schemas.config import ModelSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: threads only spin


def test_init_tiny_writes_a_loadable_codec_that_says_random_init(tmp_path, capsys):
    with pytest.warns(RandomWeightsWarning, match="initialised"):
        assert codec_job.main(["init", "--tiny", str(tmp_path)]) == 0
    assert "random-init" in capsys.readouterr().out
    sidecar = json.loads((tmp_path / "codec.json").read_text())
    assert (
        sidecar["random_init"] is True
        and CodecConfig.from_json((tmp_path / "codec.json").read_text()) == CodecConfig.tiny()
    )
    with pytest.warns(RandomWeightsWarning, match="loaded"):
        codec = S2Codec.from_spec(ModelSpec(name="s2-codec", checkpoint=str(tmp_path), device="cpu"))
    assert "random-init" in codec.model_id
    codes = codec.encode([np.zeros(4410, np.float32)], 44100)[0]
    assert codes.shape == (10, 3) and codec.decode([codes])[0].shape == (3 * 2048,)


def test_register_adds_the_command_and_the_same_seed_gives_the_same_file(tmp_path):
    parser = argparse.ArgumentParser(prog="s2")
    codec_job.register(parser.add_subparsers(dest="command", required=True))
    for out in ("a", "b"):
        args = parser.parse_args(["codec", "init", "--tiny", "--seed", "7", str(tmp_path / out)])
        with pytest.warns(RandomWeightsWarning):
            assert args.func(args) == 0
    assert (tmp_path / "a" / "codec.pth").read_bytes() == (tmp_path / "b" / "codec.pth").read_bytes()


def test_eval_reports_every_metric_as_a_table_and_json(tmp_path, capsys):
    import soundfile

    from tests.conftest import DATA

    clip, rate = soundfile.read(DATA / "fullband" / "whisper__jfk_5s.flac", dtype="float32")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    soundfile.write(tmp_path / "in" / "sub" / "jfk.flac", clip[rate : 2 * rate], rate)
    golden = DATA / "golden" / "codec" / "reduced"
    with pytest.warns(RandomWeightsWarning):
        code = codec_job.main(
            ["eval", "--codec", str(golden), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "r")]
        )
    assert code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("mel_distance", "stoi", "pesq", "si_sdr"))
    report = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert report["summary"]["clips"] == 1 and [c["key"] for c in report["clips"]] == ["sub/jfk.flac"]
    assert len(report["summary"]["codebook_perplexity"]) == 10
    assert soundfile.info(tmp_path / "r" / "wav" / "00_sub__jfk.wav").frames == rate

    assert codec_job.main(["eval", "--codec", str(tmp_path / "none"), "--input", str(tmp_path / "in")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--codec" in err
