"""Curation throughput: the `local` profile on Ray Data against the same stages run sequentially.

    .venv/bin/python -m scripts.bench_curation --out bench_out/curation.json          # `make bench`
    .venv/bin/python -m scripts.bench_curation --long-input-hours 2 --out bench_out/curation_long.json

The default run builds about one hour of input (scripts/bench_corpus.py: files of 30-120 s made from the
repository's clips, cached in bench_out/input) and curates it twice, each time in a fresh child process
whose whole process tree (driver, Ray's GCS and raylet, every Ray worker) is sampled with psutil:

  ray         curation.run.curate with pipelines.curate.RayExecutor on a local Ray with --cores CPUs (the job as
              users run it);
  sequential  the same stage objects run by curation.executor.SequentialExecutor in one process, no Ray
              (scripts/bench_sequential.py), as single-node tools run; torch gets a thread per core in
              every stage but VAD (silero-vad pins one thread, which is faster for it).

Figures (all in the JSON; the main ones in the printed table):
  audio-h per core-h   input hours / (wall hours x cores) for both modes; their ratio is the throughput ratio.
                       Wall is the curation call itself: Ray's own start-up (ray.init) is excluded, model
                       loading, planning, finalisation and the report are included in both.
  x real time          per stage, from the sequential run: input seconds / stage seconds (wall), and input
                       seconds / stage CPU seconds ("per core").
  peak memory          of the whole process tree: the largest sum of RSS seen (a shared page, e.g. of libtorch,
                       counted once per process mapping it) and the largest sum of PSS (shared pages divided
                       among the processes that map them: the tree's real footprint). Ray's object store is
                       shared memory that PSS shows only while a live process maps it, so the Ray run also
                       reports the store's own peak, and PSS + store at the same moment (an upper bound).
  Ray overhead         1 - U / (W x cores - S). W is the execution window, from building the dataset to the
                       last row reaching the driver (ray.init, planning and finalisation excluded). S is the
                       CPU the stage workers spend starting (process start, imports, the actor constructor
                       loading the model: until Ray first titles the worker with a task), excluded as start-up.
                       U is the CPU spent inside our stage code: per operator, Ray Data's task CPU seconds
                       x its "function body" share of the task wall time (decode, each model stage's __call__,
                       encode when it runs as tasks). CPU, not wall: with more runnable stages than cores a stage's
                       wall time includes waiting for a core. The rest of W x cores - S is overhead, reported by
                       share: the stage workers' CPU outside our code (batching, block building, (de)serial-
                       isation), the driver's (Ray Data's scheduler and the unit writer), Ray's daemons' and actors', and idle cores.
  resampled once       from the sequential run: which code resampled, how often (scripts/bench_sequential.py,
                       CallCounter).

--long-input-hours H instead curates one H-hour file (built block by block) with the Ray run alone and
reports the tree's peak memory (target < 3 GB for two hours).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

from jobs.config import add_overrides
from scripts.bench_corpus import build_set, long_recipe, plan_files

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "ray_over_sequential": 1.6,
    "decode_x_rt_per_core": 500.0,
    "vad_x_rt_per_core": 100.0,
    "ray_overhead_max": 0.10,
    "long_input_peak_gb_max": 3.0,
}


def _psutil():
    try:
        import psutil
    except ImportError:  # ray vendors psutil (ray/thirdparty_files) and puts it on the path when imported
        import psutil
        import ray  # noqa: F401
    return psutil


def _label(p) -> str:
    """A short name for a process: Ray sets worker titles such as 'ray::MapWorker(MapBatches(StageActor))'."""
    try:
        cmd = p.cmdline()
    except Exception:
        return p.name()
    name = cmd[0] if cmd else p.name()
    return Path(name).name if name.startswith("/") else name[:60]


def is_stage_worker(label: str) -> bool:
    """A Ray worker process that runs our stages (actors and tasks), as opposed to Ray's own daemons and actors."""
    return label.startswith("ray::") and ("MapWorker" in label or "MapBatches" in label or label == "ray::IDLE")


class Periodic:
    """Calls `sample()` on a background thread every `interval` seconds while in a `with` block; a sample
    that returns False ends the sampling."""

    def __init__(self, interval_s: float):
        self.interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> bool | None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set() and self.sample() is not False:
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class TreeSampler(Periodic):
    """Samples a process and all its descendants: summed RSS and PSS, and cumulative CPU seconds.

    RSS and CPU are cheap to read and are sampled every `interval_s`. PSS needs /proc/PID/smaps_rollup (some
    ms per large process), so it is read every `pss_every_s`, and at once when RSS reaches a new high (at
    most every 2 s): the sampler itself must not take the cores it measures (its CPU is reported)."""

    def __init__(self, pid: int, interval_s: float = 1.0, pss_every_s: float = 10.0):
        super().__init__(interval_s)
        self.psutil = _psutil()
        self.root = self.psutil.Process(pid)
        self.pss_every = pss_every_s
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0
        self.peak_parts: list[tuple[str, int]] = []  # (process, PSS MB) at the PSS peak
        self.cpu_by_pid: dict[int, float] = {}
        self.timeline: list[tuple[float, float]] = []  # (time, tree CPU seconds so far)
        self.cpu_samples: list[tuple[float, dict[int, float]]] = []  # (time, CPU seconds so far by pid)
        self.labels: dict[int, str] = {}
        self.startup_cpu: dict[int, float] = {}  # stage worker pid -> its CPU seconds when its start-up ended
        self.pss_timeline: list[tuple[float, int]] = []  # (time, tree PSS bytes)
        self._last_pss = 0.0
        self._rss_at_pss = 0  # the highest RSS at which PSS was read

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except self.psutil.Error:
            return
        rss, alive = 0, []
        for p in procs:
            try:
                rss += p.memory_info().rss
                cpu = p.cpu_times()
            except self.psutil.Error:  # exited between listing and reading
                continue
            alive.append(p)
            self.cpu_by_pid[p.pid] = max(self.cpu_by_pid.get(p.pid, 0.0), cpu.user + cpu.system)
            self._track(p)
        now = time.time()
        self.timeline.append((now, sum(self.cpu_by_pid.values())))
        self.cpu_samples.append((now, dict(self.cpu_by_pid)))
        self.peak_procs = max(self.peak_procs, len(alive))
        self.peak_rss = max(self.peak_rss, rss)
        new_high = rss > 1.02 * self._rss_at_pss and now - self._last_pss >= 2.0
        if new_high or now - self._last_pss >= self.pss_every:
            self._last_pss, self._rss_at_pss = now, max(self._rss_at_pss, rss)
            self._sample_pss(alive)

    def _track(self, p) -> None:
        """Label a process; a stage worker's start-up (process start, imports, the actor constructor that
        loads the model) ends the first time Ray titles it with anything but IDLE or __init__."""
        label = _label(p)
        self.labels[p.pid] = label
        if (
            is_stage_worker(label)
            and p.pid not in self.startup_cpu
            and label != "ray::IDLE"
            and not label.endswith(".__init__")
        ):
            self.startup_cpu[p.pid] = self.cpu_by_pid[p.pid]

    def _cpu_at(self, t: float) -> dict[int, float]:
        before = [c for s, c in self.cpu_samples if s <= t]
        return before[-1] if before else {}

    def cpu_account(self, t0: float, t1: float) -> dict:
        """CPU seconds between two times: all, the driver's (the root process), Ray's daemons', the stage workers',
        and the stage workers' start-up."""
        a, b = self._cpu_at(t0), self._cpu_at(t1)
        out = {"total": 0.0, "driver": 0.0, "ray_daemons": 0.0, "stage_workers": 0.0, "stage_worker_startup": 0.0}
        by_process: dict[str, float] = defaultdict(float)
        for pid, end in b.items():
            start = a.get(pid, 0.0)
            out["total"] += end - start
            by_process[self.labels.get(pid, "?").removesuffix(".submit")] += end - start
            if pid == self.root.pid:
                out["driver"] += end - start
            elif is_stage_worker(self.labels.get(pid, "")):
                out["stage_workers"] += end - start
                done = self.startup_cpu.get(pid, end)
                out["stage_worker_startup"] += max(0.0, min(done, end) - min(done, start))
            else:
                out["ray_daemons"] += end - start
        out["by_process"] = {k: round(v, 1) for k, v in sorted(by_process.items(), key=lambda kv: -kv[1])[:12]}
        return out

    def _sample_pss(self, procs: list) -> None:
        parts = []
        for p in procs:
            try:
                parts.append((_label(p), getattr(p.memory_full_info(), "pss", 0)))
            except self.psutil.Error:
                continue
        pss = sum(m for _, m in parts)
        self.pss_timeline.append((time.time(), pss))
        if pss > self.peak_pss:  # what the tree held at its peak, largest first
            self.peak_pss = pss
            self.peak_parts = sorted(((label, round(m / 1e6)) for label, m in parts), key=lambda x: -x[1])

    def cpu_between(self, t0: float, t1: float) -> float:
        """Tree CPU seconds consumed between two wall-clock times (nearest samples)."""
        before = [c for t, c in self.timeline if t <= t0] or [0.0]
        upto = [c for t, c in self.timeline if t <= t1] or [0.0]
        return upto[-1] - before[-1]


def _at(timeline: list[tuple[float, int]], t: float) -> int:
    """The value of a (time, value) timeline at time t: the last sample at or before it."""
    before = [v for s, v in timeline if s <= t]
    return before[-1] if before else 0


def bench_config(input_dir: Path, output: Path, cores: int, overrides: list[str] = ()):
    from jobs.config import curate_config

    return curate_config(
        "local",
        direct={"input": str(input_dir), "output": str(output), "ray": {"num_cpus": cores}},
        overrides=list(overrides),
    )


# ----------------------------------------------------------------------------- child processes


class ObjectStorePoller(Periodic):
    """Bytes used in Ray's object store, polled from the raylet. Objects live in shared memory, which a
    process's PSS shows only while it maps the pages: a block whose writer has exited is counted nowhere else."""

    def __init__(self, interval_s: float = 2.0):
        import ray
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address

        state = get_state_from_address(ray.get_runtime_context().gcs_address)
        super().__init__(interval_s)
        self.read = lambda: int(get_memory_info_reply(state).store_stats.object_store_bytes_used)
        self.timeline: list[tuple[float, int]] = []

    def sample(self) -> bool:
        try:
            self.timeline.append((time.time(), self.read()))
        except Exception:  # the raylet is going away at the end of the run
            return False
        return True


def _worker_sequential(cfg, cores: int) -> dict:
    from scripts.bench_sequential import CallCounter, run_sequential

    # A strong baseline: torch's default of a thread per core in every stage, except VAD, which silero-vad
    # pins to one thread when imported (on this machine it is faster so: the model's steps are small).
    threads = {
        name: (1 if name == "segmentation" else cores)
        for name in ("separation", "segmentation", "quality", "transcription")
    }
    return run_sequential(cfg, CallCounter(), threads)


def _worker_ray(cfg, cores: int) -> dict:
    import ray

    from curation.run import curate
    from curation.stages.pipeline import CurationPipeline
    from pipelines.curate import RayExecutor, actor_groups
    from pipelines.ray_env import ensure_ray

    t = time.time()
    ensure_ray(cfg.ray.address, cores, cfg.ray.object_store_mb)
    startup_s = time.time() - t
    executor = RayExecutor(cfg)
    with ObjectStorePoller() as store:
        summary = curate(cfg, executor)
    groups = actor_groups(cfg, CurationPipeline.from_config(cfg))
    names = [
        "decode",
        *(name.lower() for name, *_ in groups),
        *([] if cfg.ray.fuse_stages is not None else ["encode"]),
    ]
    ops = operator_times(executor.dataset.get_stats_summary(), names)
    ray.shutdown()
    exec_start, exec_end = executor.window
    return {
        "startup_s": startup_s,
        "exec_start": exec_start,
        "exec_end": exec_end,
        "wall_s": summary["wall_s"],
        "summary": summary,
        "operators": ops,
        "object_store_timeline": store.timeline,
    }


def operator_times(stats, names: list[str]) -> list[dict]:
    """Per operator of an executed dataset: the seconds inside our functions ("function body"), and the tasks'
    wall and CPU seconds. `names` label the map operators in order; operators Ray fused get their names joined."""
    chain = []
    while stats is not None:  # the summary nests its parents: flatten, oldest first
        chain[:0] = stats.operators_stats
        stats = stats.parents[0] if stats.parents else None
    out, left = [], list(names)
    for op in chain:
        fused = op.operator_name.count("MapBatches(")
        if not fused or op.wall_time is None:
            continue
        label, left = "+".join(left[:fused]), left[fused:]
        body = getattr(op, "function_body_time", None)
        out.append(
            {
                "stage": label,
                "operator": op.operator_name,
                "function_body_s": body.sum if body is not None else None,
                "task_wall_s": op.wall_time.sum,
                "task_cpu_s": op.cpu_time.sum if op.cpu_time is not None else None,
            }
        )
    return out


def worker_main(args) -> int:
    from schemas.config import CurateConfig

    cfg = CurateConfig.model_validate_json(Path(args.config_json).read_text())
    t0 = time.time()
    result = _worker_ray(cfg, args.cores) if args.worker == "ray" else _worker_sequential(cfg, args.cores)
    result["started"], result["ended"] = t0, time.time()
    Path(args.result).write_text(json.dumps(result, default=str))
    return 0


def run_child(mode: str, cfg, cores: int, work: Path) -> dict:
    """Run one mode in a fresh Python process, sampling its process tree. Returns its result plus the samples."""
    out = Path(cfg.output)
    if out.exists():
        shutil.rmtree(out)
    cfg_path, res_path = work / f"{mode}_config.json", work / f"{mode}_result.json"
    cfg_path.write_text(cfg.model_dump_json())
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)  # a local Ray of --cores CPUs, never a cluster named in the environment
    cmd = [
        sys.executable,
        "-m",
        "scripts.bench_curation",
        "--worker",
        mode,
        "--config-json",
        str(cfg_path),
        "--result",
        str(res_path),
        "--cores",
        str(cores),
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT))
    cpu0 = time.process_time()
    with TreeSampler(proc.pid) as sampler:
        rc = proc.wait()
    sampler_cpu = time.process_time() - cpu0
    if rc != 0:
        raise SystemExit(f"{mode} run failed (exit {rc})")
    result = json.loads(res_path.read_text())
    result["peak_rss_gb"] = sampler.peak_rss / 1e9
    result["peak_pss_gb"] = sampler.peak_pss / 1e9
    result["peak_processes"] = sampler.peak_procs
    result["sampler_cpu_s"] = sampler_cpu  # what measuring cost, on the same cores
    result["peak_pss_by_process_mb"] = sampler.peak_parts
    if mode == "ray":
        result["exec_tree_cpu_s"] = sampler.cpu_between(result["exec_start"], result["exec_end"])
        result["exec_cpu_account_s"] = sampler.cpu_account(result["exec_start"], result["exec_end"])
        store = result.pop("object_store_timeline")
        result["peak_object_store_gb"] = max((b for _, b in store), default=0) / 1e9
        # An upper bound on the run's memory: PSS plus the object store at the same moment (a block that a live
        # process maps is counted twice)
        result["peak_pss_plus_object_store_gb"] = (
            max((pss + _at(store, t) for t, pss in sampler.pss_timeline), default=0) / 1e9
        )
    return result


# ----------------------------------------------------------------------------- figures


def overhead_account(operators: list[dict], cpu: dict, window_s: float, cores: int) -> dict | None:
    """Ray overhead and where the cores' time went during the execution window (see the module docstring).

    udf: CPU seconds inside our stage functions, per operator task CPU x (function body / task wall);
    capacity: window x cores less the stage workers' start-up CPU; the shares below add up to 1."""
    if not operators or any(op["function_body_s"] is None or op["task_cpu_s"] is None for op in operators):
        return None
    udf = sum(op["task_cpu_s"] * op["function_body_s"] / op["task_wall_s"] for op in operators if op["task_wall_s"] > 0)
    capacity = window_s * cores - cpu["stage_worker_startup"]
    shares = {
        "udf": udf,
        "stage_workers_outside_udf": cpu["stage_workers"] - cpu["stage_worker_startup"] - udf,
        "driver": cpu["driver"],
        "ray_daemons": cpu["ray_daemons"],
        "idle": window_s * cores - cpu["total"],
    }
    return {
        "overhead": round(1 - udf / capacity, 3),
        "cpu_by_process_s": cpu["by_process"],
        "udf_cpu_s": round(udf, 1),
        "startup_cpu_s_excluded": round(cpu["stage_worker_startup"], 1),
        "capacity_s": round(capacity, 1),
        "shares": {k: round(v / capacity, 3) for k, v in shares.items()},
    }


def figures(seq: dict | None, ray_run: dict | None, cores: int) -> dict:
    out: dict = {}
    audio_s = None
    if seq is not None:
        audio_s = seq["summary"]["hours_in"] * 3600
        out["sequential"] = {
            "wall_s": round(seq["wall_s"], 1),
            "audio_h_per_core_h": round(audio_s / (seq["wall_s"] * cores), 2),
            "peak_rss_gb": round(seq["peak_rss_gb"], 2),
            "peak_pss_gb": round(seq["peak_pss_gb"], 2),
            "peak_pss_by_process_mb": seq["peak_pss_by_process_mb"],
            "sampler_cpu_s": round(seq["sampler_cpu_s"], 1),
            "segments_kept": seq["summary"]["segments_kept"],
            "hours_out": round(seq["summary"]["hours_out"], 3),
        }
        out["stages"] = {
            name: {
                "wall_s": round(st["wall_s"], 2),
                "cpu_s": round(st["cpu_s"], 2),
                "x_real_time": round(audio_s / st["wall_s"], 1) if st["wall_s"] > 0 else None,
                "x_real_time_per_core": round(audio_s / st["cpu_s"], 1) if st["cpu_s"] > 0 else None,
                "audio_received_s": round(st["audio_in_s"], 1) if st["audio_in_s"] is not None else None,
                "share_of_stage_time": round(st["wall_s"] / sum(s["wall_s"] for s in seq["stages"].values()), 3),
            }
            for name, st in seq["stages"].items()
        }
        out["model_load_s"] = {k: round(v, 2) for k, v in seq["load_s"].items()}
        out["decoded_and_resampled_once"] = seq["checks"]
    if ray_run is not None:
        audio_s = ray_run["summary"]["hours_in"] * 3600
        window = ray_run["exec_end"] - ray_run["exec_start"]
        account = overhead_account(ray_run["operators"], ray_run["exec_cpu_account_s"], window, cores)
        out["ray"] = {
            "wall_s": round(ray_run["wall_s"], 1),
            "startup_s_excluded": round(ray_run["startup_s"], 1),
            "audio_h_per_core_h": round(audio_s / (ray_run["wall_s"] * cores), 2),
            "peak_rss_gb": round(ray_run["peak_rss_gb"], 2),
            "peak_pss_gb": round(ray_run["peak_pss_gb"], 2),
            "peak_processes": ray_run["peak_processes"],
            "peak_object_store_gb": round(ray_run["peak_object_store_gb"], 2),
            "peak_pss_plus_object_store_gb": round(ray_run["peak_pss_plus_object_store_gb"], 2),
            "peak_pss_by_process_mb": ray_run["peak_pss_by_process_mb"],
            "sampler_cpu_s": round(ray_run["sampler_cpu_s"], 1),
            "segments_kept": ray_run["summary"]["segments_kept"],
            "hours_out": round(ray_run["summary"]["hours_out"], 3),
            "execution_window_s": round(window, 1),
            "overhead": account.pop("overhead") if account else None,
            "overhead_account": account,
            "tree_cpu_utilisation": round(ray_run["exec_tree_cpu_s"] / (window * cores), 3),
            "operators": ray_run["operators"],
        }
    if seq is not None and ray_run is not None:
        out["ray_over_sequential"] = round(
            out["ray"]["audio_h_per_core_h"] / out["sequential"]["audio_h_per_core_h"], 2
        )
    return out


def verdicts(fig: dict) -> dict:
    v = {}
    if "ray_over_sequential" in fig:
        v["ray_over_sequential >= 1.6"] = fig["ray_over_sequential"] >= TARGETS["ray_over_sequential"]
    if "stages" in fig:
        v["decode >= 500x RT per core"] = (
            fig["stages"]["decode"]["x_real_time_per_core"] >= TARGETS["decode_x_rt_per_core"]
        )
        v["VAD >= 100x RT per core"] = (
            fig["stages"]["segmentation"]["x_real_time_per_core"] >= TARGETS["vad_x_rt_per_core"]
        )
        v["no audio decoded or resampled twice"] = fig["decoded_and_resampled_once"]["ok"]
    if "ray" in fig and fig["ray"]["overhead"] is not None and "long_input" not in fig:
        v["Ray overhead <= 10%"] = fig["ray"]["overhead"] <= TARGETS["ray_overhead_max"]
    if "long_input" in fig:
        v["long input peak PSS < 3 GB"] = fig["ray"]["peak_pss_gb"] < TARGETS["long_input_peak_gb_max"]
    return v


def print_table(fig: dict, cores: int) -> None:
    modes = [m for m in ("ray", "sequential") if m in fig]
    print(f"\n{'mode':<12}{'wall s':>9}{'audio-h/core-h':>16}{'peak RSS GB':>13}{'peak PSS GB':>13}{'kept':>7}")
    for m in modes:
        r = fig[m]
        print(
            f"{m:<12}{r['wall_s']:>9.1f}{r['audio_h_per_core_h']:>16.2f}{r['peak_rss_gb']:>13.2f}{r['peak_pss_gb']:>13.2f}{r['segments_kept']:>7}"
        )
    if "ray" in fig:
        r = fig["ray"]
        print(
            f"Ray run memory: peak PSS {r['peak_pss_gb']:.2f} GB over {r['peak_processes']} processes; object store peak {r['peak_object_store_gb']:.2f} GB; "
            f"PSS + object store <= {r['peak_pss_plus_object_store_gb']:.2f} GB"
        )
    if "ray_over_sequential" in fig:
        print(
            f"Ray / sequential throughput: {fig['ray_over_sequential']:.2f}x (target >= {TARGETS['ray_over_sequential']})"
        )
    if "ray" in fig and fig["ray"]["overhead"] is not None:
        r = fig["ray"]
        a = r["overhead_account"]
        print(
            f"Ray overhead: {100 * r['overhead']:.1f}% of {r['execution_window_s']:.0f} s x {cores} cores less {a['startup_cpu_s_excluded']:.0f} s of worker "
            f"start-up (ray.init's {r['startup_s_excluded']:.1f} s excluded too); shares: "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in a["shares"].items())
        )
    if "stages" in fig:
        print(f"\n{'stage (sequential)':<20}{'wall s':>9}{'CPU s':>9}{'x RT':>9}{'x RT/core':>11}{'share':>8}")
        for name, s in fig["stages"].items():
            xrt = f"{s['x_real_time']:.0f}" if s["x_real_time"] else "-"
            xrc = f"{s['x_real_time_per_core']:.0f}" if s["x_real_time_per_core"] else "-"
            print(
                f"{name:<20}{s['wall_s']:>9.1f}{s['cpu_s']:>9.1f}{xrt:>9}{xrc:>11}{100 * s['share_of_stage_time']:>7.1f}%"
            )
        c = fig["decoded_and_resampled_once"]
        print(
            f"mixture resampled in decode {c['mixture_resample_streams']} "
            f"(inputs {c['inputs']}), in the separator {c['mixture_resamples_in_separator']} (rows it received {c['separated']}), vocals {c['vocals_resample_streams']}, analysis copies {c['analysis_copies']} (pieces {c['pieces']}), other {c['other_resamples'] or 'none'}"
        )
    print("\ntargets: " + ", ".join(f"{k}: {'met' if ok else 'NOT met'}" for k, ok in verdicts(fig).items()))


def machine() -> dict:
    model = ""
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_out/curation.json", help="results as JSON")
    p.add_argument("--hours", type=float, default=1.0, help="hours of input audio (default 1)")
    p.add_argument(
        "--long-input-hours",
        type=float,
        default=None,
        help="curate ONE file this long (Ray run only) and report peak memory",
    )
    p.add_argument(
        "--input-dir",
        default=None,
        help="where the input set is cached (default bench_out/input, or bench_out/input_long)",
    )
    p.add_argument("--work-dir", default="bench_out/curation_runs", help="outputs of the runs (replaced on each run)")
    p.add_argument(
        "--cores", type=int, default=2, help="CPUs of the local Ray; core-hours = wall x cores for both modes"
    )
    p.add_argument("--modes", default="ray,sequential", help="which runs (comma-separated)")
    p.add_argument("--seed", type=int, default=0)
    add_overrides(p)
    p.add_argument("--worker", choices=["ray", "sequential"], help=argparse.SUPPRESS)
    p.add_argument("--config-json", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker_main(args)

    long_mode = args.long_input_hours is not None
    files = [long_recipe(args.long_input_hours, args.seed)] if long_mode else plan_files(args.hours, args.seed)
    input_dir = Path(args.input_dir or ("bench_out/input_long" if long_mode else "bench_out/input"))
    t = time.time()
    recipe = build_set(input_dir, files)
    print(
        f"input: {recipe['files']} files, {recipe['seconds'] / 3600:.3f} h in {input_dir} "
        f"({'reused' if recipe['reused'] else f'built in {time.time() - t:.0f} s'}; recipe {recipe['hash']})"
    )
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    modes = ["ray"] if long_mode else [m.strip() for m in args.modes.split(",") if m.strip()]
    info = machine()
    results = {}
    for mode in modes:
        print(f"running {mode} ...", flush=True)
        results[mode] = run_child(
            mode,
            bench_config(input_dir.resolve(), (work / mode).resolve(), args.cores, args.overrides),
            args.cores,
            work,
        )
    fig = figures(results.get("sequential"), results.get("ray"), args.cores)
    if long_mode:
        fig["long_input"] = {"hours": args.long_input_hours, "file": files[0].name}
    fig["targets"] = TARGETS
    fig["verdicts"] = verdicts(fig)
    fig["input"] = {k: recipe[k] for k in ("hash", "files", "seconds", "kinds")}
    fig["machine"] = info | {"load_average_at_end": list(os.getloadavg())}
    fig["cores"] = args.cores
    fig["overrides"] = args.overrides
    fig["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    fig["command"] = " ".join(
        [".venv/bin/python", "scripts/bench_curation.py", *(argv if argv is not None else sys.argv[1:])]
    )
    print_table(fig, args.cores)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(fig, indent=1))
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
