"""The curation benchmark's pieces: the reproducible input set, the sequential baseline and its checks, the
process-tree sampler and the figures. The Ray side is run end to end by `make bench` (no Ray here)."""

import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

import curation.stages.decode as decode_module
from curation.io.audio import open_stream
from scripts.bench_corpus import FileRecipe, Section, build_set, long_recipe, plan_files
from scripts.bench_curation import TreeSampler, bench_config, figures, verdicts
from scripts.bench_sequential import CallCounter, run_sequential


def test_plan_is_reproducible_and_scales_with_hours():
    small, again, other = plan_files(0.1), plan_files(0.1), plan_files(0.1, seed=1)
    assert small == again and small != other
    assert sum(f.seconds for f in small) == pytest.approx(360.0, abs=5.0)
    assert all(30.0 <= f.seconds <= 120.0 for f in small[:-1]) and len({f.name for f in small}) == len(small)
    hour = plan_files(1.0)
    assert sum(f.seconds for f in hour) == pytest.approx(3600.0, abs=5.0)
    assert {f.sections[0].kind for f in hour} == {"clean", "music", "noise", "background"}
    assert len({(f.sample_rate, f.format) for f in hour}) >= 4


def test_long_recipe_cycles_kinds_and_totals_its_hours():
    r = long_recipe(0.5, section_s=300.0)
    assert r.seconds == pytest.approx(1800.0)
    assert [s.kind for s in r.sections] == ["clean", "music", "clean", "noise", "clean", "background"]


def test_set_is_built_at_its_rates_reused_and_rebuilt_when_incomplete(tmp_path):
    files = [
        FileRecipe("a.wav", 1, 48000, "WAV", (Section("music", 6.0, 5.0),)),
        FileRecipe("b.ogg", 2, 22050, "OGG", (Section("clean", 4.0, None),)),
    ]
    first = build_set(tmp_path, files)
    assert not first["reused"] and first["seconds"] == pytest.approx(10.0)
    for f in files:
        info = sf.info(str(tmp_path / f.name))
        assert info.samplerate == f.sample_rate and info.duration == pytest.approx(f.seconds, abs=0.05)
    x, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32")
    assert 0.01 < np.sqrt(np.mean(x**2)) < 0.5 and np.abs(x).max() < 1.0
    assert build_set(tmp_path, files)["reused"]
    (tmp_path / "b.ogg").unlink()
    assert not build_set(tmp_path, files)["reused"] and (tmp_path / "b.ogg").is_file()
    changed = [files[0], FileRecipe("b.ogg", 3, 22050, "OGG", (Section("clean", 4.0, None),))]
    assert build_set(tmp_path, changed)["hash"] != first["hash"]


@pytest.fixture(scope="module")
def sequential_run(tmp_path_factory):
    """One clean 16 kHz file and one 48 kHz speech-over-music file through every stage of the local profile; every
    opening of an input for decoding is counted too."""
    src, out = tmp_path_factory.mktemp("in"), tmp_path_factory.mktemp("out") / "run"
    build_set(
        src,
        [
            FileRecipe("clean.flac", 5, 16000, "FLAC", (Section("clean", 14.0, None),)),
            FileRecipe("music.wav", 6, 48000, "WAV", (Section("music", 10.0, 12.0),)),
        ],
    )
    opens = Counter()

    def counted(path, *args, **kwargs):
        opens[str(path)] += 1
        return open_stream(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(decode_module, "open_stream", counted)
        result = run_sequential(bench_config(src, out, 2), CallCounter(), {"segmentation": 1})
    return result | {
        "opens": dict(opens),
        "inputs": sorted(str(p) for p in src.iterdir() if p.suffix in (".flac", ".wav")),
    }


def test_sequential_baseline_runs_every_stage_and_decodes_and_resamples_once(sequential_run):
    r = sequential_run
    assert r["summary"]["inputs"] == 2 and r["summary"]["segments_kept"] >= 1
    assert r["summary"]["hours_in"] * 3600 == pytest.approx(24.0, abs=0.1)
    # separation per utterance, after VAD (the default gate)
    assert list(r["stages"]) == ["decode", "segmentation", "separation", "quality", "transcription", "encode"]
    assert all(s["wall_s"] > 0 and s["calls"] >= 1 for s in r["stages"].values())
    assert list(r["load_s"]) == ["segmentation", "separation", "quality", "transcription", "encode"]  # loading apart
    assert r["opens"] == dict.fromkeys(r["inputs"], 1) and len(r["inputs"]) == 2  # every input decoded by one stream
    # the separator sees utterances only, never the pauses between them
    assert 0 < r["stages"]["separation"]["audio_in_s"] <= r["stages"]["segmentation"]["audio_in_s"] < 24.1
    checks = r["checks"]
    assert checks["ok"] and not checks["other_resamples"] and checks["pieces"] == r["pieces"] == 2
    # both sources are at most 48 kHz: decode keeps them (the report's players decode rejected spans at 16 kHz); the
    # utterances the gate sends on go to spleeter's 44.1 kHz once each
    assert 1 <= checks["mixture_resamples_in_separator"] <= checks["separated"]
    assert checks["analysis_copies"] >= 1  # the 48 kHz piece's, made in decode (the 16 kHz one is its own)


def test_call_counter_flags_a_second_resampling_of_the_same_audio():
    from models.signal import RESAMPLE_LISTENERS, resample

    counter = CallCounter()
    with counter.active():
        resample(np.zeros(1600, np.float32), 16000, 8000)
    assert counter.resamples == {__name__: 1}  # the caller of the helper, not the helper
    assert not counter.check(inputs=0, pieces=0, separated=0)["ok"] and not RESAMPLE_LISTENERS  # and it stops listening
    resample(np.zeros(1600, np.float32), 16000, 8000)
    assert counter.resamples == {__name__: 1}
    counter = CallCounter()
    counter.resamples.update({"curation.io.audio": 2})  # one input's mixture resampled twice in decode
    assert not counter.check(inputs=1, pieces=1, separated=1)["ok"]
    counter.resamples.update({"curation.io.audio": 1, "models.separator.base": 1, "models.separator.chunking": 1})
    assert counter.check(inputs=1, pieces=1, separated=1)["ok"]
    counter.resamples.update({"models.separator.chunking": 2})  # a piece's vocals resampled twice
    assert not counter.check(inputs=1, pieces=1, separated=1)["ok"]


def test_tree_sampler_sees_memory_and_cpu_of_child_processes():
    code = (
        "import numpy as np, time, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import numpy as np, time; x = np.ones(150_000_000 // 8); time.sleep(1.5)'])\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.5: pass\n"
        "child.wait()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    with TreeSampler(proc.pid, interval_s=0.1, pss_every_s=0.2) as sampler:
        proc.wait()
        time.sleep(0.05)
    assert sampler.peak_rss > 150e6 and sampler.peak_pss > 150e6  # the grandchild's 150 MB array
    assert sampler.peak_procs == 2 and sampler.peak_parts
    assert sampler.cpu_between(0, time.time()) >= 0.4  # the parent's busy loop
    account = sampler.cpu_account(0, time.time())
    assert account["driver"] >= 0.4 and account["total"] >= account["driver"] + account["ray_daemons"]
    assert account["stage_workers"] == account["stage_worker_startup"] == 0  # no Ray workers in this tree


def _seq(wall_s: float) -> dict:
    stage = {"wall_s": 1.0, "cpu_s": 1.0, "calls": 1, "audio_in_s": 3600.0}
    return {
        "wall_s": wall_s,
        "summary": {"hours_in": 1.0, "hours_out": 0.5, "segments_kept": 10},
        "peak_rss_gb": 1.0,
        "peak_pss_gb": 0.9,
        "sampler_cpu_s": 1.0,
        "peak_pss_by_process_mb": [],
        "load_s": {},
        "stages": {n: dict(stage) for n in ("decode", "separation", "segmentation")},
        "checks": {"ok": True},
    }


def _ray(wall_s: float, window_s: float, busy_s: list[float]) -> dict:
    """A Ray run whose stage workers spent 20 s starting and whose daemons and driver took 10 s each."""
    workers = sum(busy_s) + 20.0 + 5.0
    cpu = {
        "total": workers + 20.0,
        "driver": 10.0,
        "ray_daemons": 10.0,
        "stage_workers": workers,
        "stage_worker_startup": 20.0,
        "by_process": {},
    }
    return {
        "wall_s": wall_s,
        "startup_s": 3.0,
        "exec_start": 100.0,
        "exec_end": 100.0 + window_s,
        "exec_tree_cpu_s": cpu["total"],
        "exec_cpu_account_s": cpu,
        "summary": {"hours_in": 1.0, "hours_out": 0.5, "segments_kept": 10},
        "peak_rss_gb": 2.0,
        "peak_pss_gb": 1.5,
        "peak_processes": 12,
        "sampler_cpu_s": 1.0,
        "peak_object_store_gb": 0.3,
        "peak_pss_plus_object_store_gb": 1.7,
        "peak_pss_by_process_mb": [],
        "operators": [
            {"stage": f"s{i}", "function_body_s": b, "task_wall_s": 2 * b, "task_cpu_s": 2 * b}
            for i, b in enumerate(busy_s)
        ],
    }


def test_figures_define_throughput_ratio_and_overhead_as_documented():
    fig = figures(_seq(800.0), _ray(400.0, 380.0, [300.0, 380.0]), cores=2)
    assert fig["sequential"]["audio_h_per_core_h"] == pytest.approx(3600 / 1600, abs=0.01)
    assert fig["ray"]["audio_h_per_core_h"] == pytest.approx(3600 / 800, abs=0.01)
    assert fig["ray_over_sequential"] == pytest.approx(2.0)
    # U = task CPU x body/wall = 680 s of 760 - 20 s start-up: 8.1 % overhead; the shares add up to one
    assert fig["ray"]["overhead"] == pytest.approx(1 - 680 / 740, abs=1e-3)
    shares = fig["ray"]["overhead_account"]["shares"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=2e-3) and shares["idle"] == pytest.approx(35 / 740, abs=1e-3)
    assert fig["stages"]["separation"]["x_real_time_per_core"] == pytest.approx(3600.0)
    v = verdicts(fig)
    assert v["ray_over_sequential >= 1.6"] and v["decode >= 500x RT per core"] and v["Ray overhead <= 10%"]
    slow = verdicts(figures(_seq(800.0), _ray(700.0, 680.0, [300.0, 300.0]), cores=2))
    assert not slow["ray_over_sequential >= 1.6"] and not slow["Ray overhead <= 10%"]


def test_operator_times_label_operators_in_order_and_join_fused_ones():
    from types import SimpleNamespace as NS

    from scripts.bench_curation import operator_times

    def op(name, body):
        return NS(
            operator_name=name, wall_time=NS(sum=body + 1), cpu_time=NS(sum=body), function_body_time=NS(sum=body)
        )

    parent = NS(
        operators_stats=[
            NS(operator_name="FromItems", wall_time=None),
            op("MapBatches(decode_batch)->MapBatches(StageActor)", 2.0),
        ],
        parents=[],
    )
    last = NS(
        operators_stats=[op("MapBatches(StageActor)", 5.0), op("MapBatches(encode_audio)", 1.0)], parents=[parent]
    )
    ops = operator_times(last, ["decode", "separation", "segmentation", "encode"])
    assert [(o["stage"], o["function_body_s"]) for o in ops] == [
        ("decode+separation", 2.0),
        ("segmentation", 5.0),
        ("encode", 1.0),
    ]


def test_worker_start_up_ends_when_ray_first_titles_it_with_a_task():
    import os
    from types import SimpleNamespace as NS

    from scripts.bench_curation import is_stage_worker

    assert is_stage_worker("ray::IDLE") and is_stage_worker("ray::MapWorker(MapBatches(StageActor)).submit")
    assert not is_stage_worker("ray::_StatsActor") and not is_stage_worker("raylet")
    sampler = TreeSampler(os.getpid())
    for cpu, title in (
        (1.0, "ray::IDLE"),
        (3.0, "ray::MapWorker(MapBatches(StageActor)).__init__"),
        (4.0, "ray::MapWorker(MapBatches(StageActor))"),
        (9.0, "ray::MapWorker(MapBatches(StageActor)).submit"),
    ):
        sampler.cpu_by_pid[7] = cpu
        sampler._track(NS(pid=7, cmdline=lambda title=title: [title], name=lambda: "x"))
    assert sampler.startup_cpu == {7: 4.0}
