"""`s2 speak` end to end on tiny random checkpoints: a reference voice through the codec, generation, decoding,
a WAV file, and the warnings that the weights are random."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile

from jobs import speak
from models.dual_ar import init_tiny


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    import torch

    from models.codec import CodecConfig, random_codec, save_codec

    root = tmp_path_factory.mktemp("speak")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the codec warns that it is random: that is what this test builds
        codec = save_codec(random_codec(CodecConfig.tiny(), seed=0), root / "codec")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield init_tiny(root / "model", 0, max_seq_len=512), codec
    torch.set_num_threads(threads)


def test_dual_ar_speak_writes_audio_and_warns_about_random_weights(checkpoints, tmp_path, capsys):
    model, codec = checkpoints
    reference = tmp_path / "ref.wav"
    soundfile.write(reference, 0.1 * np.sin(np.linspace(0, 400, 4410)).astype(np.float32), 44100)
    out = tmp_path / "out.wav"
    args = ["--model", str(model), "--codec", str(codec), "--text", "<|speaker:0|>hi [laugh]", "--out", str(out)]
    args += ["--reference", str(reference), "--reference-text", "a tone", "--max-new-tokens", "3", "--top-k", "1"]
    assert speak.main(args) == 0
    audio, rate = soundfile.read(out)
    assert rate == 44100 and len(audio) % 2048 == 0 and 0 < len(audio) <= 3 * 2048
    err = capsys.readouterr().err
    assert "the model" in err and "the codec" in err and err.count("random-init weights") == 2


def test_dual_ar_speak_refuses_a_reference_without_its_text(checkpoints, tmp_path, capsys):
    model, codec = checkpoints
    args = [
        "--model",
        str(model),
        "--codec",
        str(codec),
        "--text",
        "hi",
        "--out",
        str(tmp_path / "o.wav"),
        "--reference",
        "x.wav",
    ]
    assert speak.main(args) == 2
    assert "--reference and --reference-text go together" in capsys.readouterr().err


def test_dual_ar_speak_names_a_missing_model_in_one_line(checkpoints, tmp_path, capsys):
    _, codec = checkpoints
    assert (
        speak.main(
            ["--model", str(tmp_path / "none"), "--codec", str(codec), "--text", "hi", "--out", str(tmp_path / "o.wav")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("cannot start: Dual-AR model: --model ") and "\n" not in err  # named by its own flag
