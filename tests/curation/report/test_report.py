import json
import random
import re
import shutil
import struct
import subprocess
from collections import Counter

import numpy as np
import pytest

import storage
from curation.io.keys import segment_key
from curation.io.shards import manifest_row
from curation.report.plots import plot_tags
from curation.report.stats import RunStats
from curation.report.write import write_report
from schemas.quality import QualityScores
from schemas.rejects import RejectReason, Stage
from schemas.sample import AudioFacts, Reject, Sample, SourceRef
from schemas.transcript import RichTranscript

THRESHOLDS = {"overall": 2.8, "recording_quality": 3.2}
LINES = [
    "<|speaker:0|>So I told him [laugh] no way.<|speaker:1|>[whispers] Really?",
    "<|speaker:0|>[sigh] It has been a long day.",
    "<|speaker:0|>Well [Laughs] that is one way to put it.",
    "<|speaker:0|>We start at nine.<|speaker:1|>[cough] Nine sharp?<|speaker:2|>[excited] Yes!",
    "<|speaker:0|>Thanks for coming [breath] everyone.",
    "<|speaker:0|>The [mystery noise] was odd.",
]


def make_sample(uri: str, k: int, rng: random.Random, with_transcript: bool = True) -> Sample:
    start = k * 7.0
    dur = round(rng.uniform(1.5, 14.0), 2)
    q = QualityScores(
        model_id="dnsmos-p835",
        overall=round(rng.gauss(3.4, 0.45), 3),
        recording_quality=round(rng.gauss(3.7, 0.45), 3),
        extra={"sig": 3.1},
    )
    t = RichTranscript.from_inline(LINES[k % len(LINES)], model_id="pocketsphinx") if with_transcript else None
    return Sample(
        key=segment_key(uri, k),
        source=SourceRef(
            uri=uri,
            start_s=start,
            end_s=start + dur,
            audio=AudioFacts(sample_rate=44100, channels=2, duration_s=600.0, format="FLAC"),
        ),
        audio=AudioFacts(sample_rate=24000, channels=1, duration_s=dur, format="FLAC"),
        quality=q,
        transcript=t,
    )


def run_data():
    """Kept manifest rows and reject dicts shaped as finalize reads them from the unit records."""
    rng = random.Random(7)
    samples, rejects = [], []
    for f in range(4):
        uri = f"/corpus/podcast_{f}.flac"  # not on this machine: the report lists its examples without players
        for k in range(12):
            s = make_sample(uri, k, rng, with_transcript=k != 5)
            failed = [
                f"{d} {v:.2f} < {THRESHOLDS[d]:g}"
                for d, v in s.quality.dimensions().items()
                if d in THRESHOLDS and v < THRESHOLDS[d]
            ]
            if failed:
                r = Reject(
                    input=uri,
                    key=s.key,
                    stage=Stage.QUALITY,
                    reason=RejectReason.QUALITY_BELOW_THRESHOLD,
                    detail="; ".join(failed),
                    start_s=s.source.start_s,
                    end_s=s.source.end_s,
                )
                rejects.append(r.model_dump(mode="json") | {"sample_json": s.model_dump_json(exclude_none=True)})
            elif k == 9:
                r = Reject(
                    input=uri,
                    key=s.key,
                    stage=Stage.TRANSCRIPTION,
                    reason=RejectReason.SIDECAR_DISAGREEMENT,
                    detail="wer 0.81 > 0.6",
                )
                # the page escapes whatever text a reason column holds (rejects.parquet rows are plain strings)
                rejects.append(
                    r.model_dump(mode="json")
                    | {"reason": "sidecar_mismatch <&>", "sample_json": s.model_dump_json(exclude_none=True)}
                )
            else:
                samples.append(manifest_row(s, f"shards/shard-{f:06d}-000.tar"))
    rejects.append(
        Reject(
            input="/data/broken.mp3", stage=Stage.DECODE, reason=RejectReason.DECODE_FAILED, detail="Invalid data"
        ).model_dump(mode="json")
        | {"sample_json": None}
    )
    by_reason = Counter(f"{r['stage']}/{r['reason']}" for r in rejects)
    summary = {
        "inputs": 5,
        "inputs_with_samples": 4,
        "inputs_rejected": 1,
        "segments_kept": len(samples),
        "segments_rejected": len(rejects) - 1,
        "rejects_by_reason": dict(sorted(by_reason.items())),
        "hours_in": 4 * 600 / 3600,
        "hours_out": sum(m["duration_s"] for m in samples) / 3600,
        "shards": 4,
        "wall_s": 93.4,
        "audio_hours_per_hour": 25.7,
        "output": "/runs/<b>demo</b>",
    }
    return samples, rejects, summary


def stats_of(samples: list[dict], rejects: list[dict]) -> RunStats:
    stats = RunStats()
    stats.add_unit(samples, rejects)
    return stats


def pngs_in(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_report_writes_every_plot_and_the_page_references_them(tmp_path):
    samples, rejects, summary = run_data()
    assert 20 < len(samples) < 45 and {r["stage"] for r in rejects} == {"quality", "transcription", "decode"}
    uri = write_report(str(tmp_path), stats_of(samples, rejects), summary, THRESHOLDS)
    report = tmp_path / "report"
    assert uri == str(report / "index.html")
    page = (report / "index.html").read_text()
    files = sorted(p.name for p in report.glob("*.png"))
    assert files == sorted(
        [
            "hours.png",
            "durations.png",
            "bandwidth.png",
            "quality_overall.png",
            "quality_recording_quality.png",
            "rejects.png",
            "tags.png",
            "speakers.png",
        ]
    )
    assert sorted(pngs_in(page)) == files
    record = json.loads((report / "summary.json").read_text())
    assert [p["file"] for p in record["plots"]] == pngs_in(page)
    assert record["segments_kept"] == len(samples) and record["quality_thresholds"] == THRESHOLDS
    for name in files:
        data = (report / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in data and b"matplotlib" not in data
    # text is escaped, numbers are in the table
    assert "<b>demo</b>" not in page and "&lt;b&gt;demo&lt;/b&gt;" in page
    assert "sidecar_mismatch &lt;&amp;&gt;" in page and "sidecar_mismatch <&>" not in page
    assert "93.4 s" in page and "25.7" in page and "40.0 min" in page
    # deterministic: a second report of the same run is byte-identical
    write_report(str(tmp_path / "again"), stats_of(samples, rejects), summary, THRESHOLDS)
    for p in sorted(report.iterdir()):
        assert p.read_bytes() == (tmp_path / "again" / "report" / p.name).read_bytes(), p.name


def test_tags_are_read_from_turns_in_canonical_form():
    s = make_sample("/x.wav", 0, random.Random(0))
    s.transcript = RichTranscript.from_inline(
        "<|speaker:0|>Oh [Laughs] fine.<|speaker:1|>[whispers] ok [laugh]", model_id="m"
    )
    assert s.transcript.tags() == ["laugh", "whispers", "laugh"]
    # a sample without a transcript has no tags to plot (and does not break the plot)
    s.transcript = None
    untranscribed = RunStats()
    untranscribed.add_kept(s)
    assert untranscribed.untranscribed == 1 and plot_tags(untranscribed) == plot_tags(RunStats())


def test_empty_run_still_gives_a_complete_page(tmp_path):
    summary = {
        "inputs": 0,
        "inputs_with_samples": 0,
        "inputs_rejected": 0,
        "segments_kept": 0,
        "segments_rejected": 0,
        "rejects_by_reason": {},
        "hours_in": 0.0,
        "hours_out": 0.0,
        "shards": 0,
    }
    write_report(str(tmp_path), RunStats(), summary, {})
    report = tmp_path / "report"
    page = (report / "index.html").read_text()
    assert (
        sorted(pngs_in(page))
        == sorted(p.name for p in report.glob("*.png"))
        == sorted(
            ["hours.png", "durations.png", "bandwidth.png", "quality.png", "rejects.png", "tags.png", "speakers.png"]
        )
    )
    assert "wall time" in page and "–" in page


def test_report_on_s3(bucket):
    samples, rejects, summary = run_data()
    uri = write_report(f"s3://{bucket}/run1", stats_of(samples, rejects), summary, THRESHOLDS)
    assert uri == f"s3://{bucket}/run1/report/index.html"
    names = {u.rsplit("/", 1)[1] for u, _ in storage.list_files(f"s3://{bucket}/run1/report")}
    assert set(pngs_in(storage.read_text(uri))) | {"index.html", "summary.json"} == names


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp_path, *args: str) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    out = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_page_renders_with_all_images_in_chromium(tmp_path):
    samples, rejects, summary = run_data()
    page = write_report(str(tmp_path / "run"), stats_of(samples, rejects), summary, THRESHOLDS)
    n = len(pngs_in(open(page).read()))
    shot = tmp_path / "shot.png"
    # virtual time lets the load handler run before the DOM is dumped; it stamps data-images="loaded/total"
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", f"file://{page}")
    assert f'data-images="{n}/{n}"' in dom
    chromium(tmp_path, "--window-size=1400,2400", f"--screenshot={shot}", f"file://{page}")
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (1400, 2400)
    # and the check can fail: a report copied without one plot is flagged
    (tmp_path / "run" / "report" / "tags.png").unlink()
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", f"file://{page}")
    assert f'data-images="{n - 1}/{n}"' in dom and 'class="missing"' in dom


def _listened_run(tmp_path):
    """A real unit written to shards (kept clips of known audio) with rejects whose spans lie in a real input: what
    finalize streams into the report."""
    import soundfile as sf

    from curation.io.shards import write_unit
    from curation.stages.encode import EncodeStage
    from schemas.config import ShardConfig
    from tests.conftest import DATA
    from tests.factories import segment_row

    src = DATA / "speech" / "leopard__test.wav"
    wav, sr = sf.read(src, dtype="float32")
    rows = []
    for k in range(7):
        row = segment_row(wav[k * sr // 2 : k * sr // 2 + sr], sr, 0, uri=str(src), segment=k, start_s=k / 2)
        row.sample.quality = QualityScores(model_id="q", overall=2.9 + 0.25 * k, recording_quality=3.5)
        row.sample.transcript = RichTranscript.from_inline(f"<|speaker:0|>clip {k} <b>", model_id="asr")
        if k == 6:
            row.rejected(Stage.QUALITY, RejectReason.QUALITY_BELOW_THRESHOLD, "overall 1.2 < 2.8 <i>")
        rows.append(row)
    gone = segment_row(wav[:sr], sr, 1, uri=str(tmp_path / "moved.wav"), segment=0, start_s=0.0)
    rows.append(gone.rejected(Stage.SEGMENTATION, RejectReason.SEGMENT_TOO_SHORT, "0.40 s < min 1.0 s"))
    record = write_unit(str(tmp_path), 0, EncodeStage()(rows), ShardConfig(samples_per_shard=4))
    stats = RunStats()
    stats.add_unit(record["samples"], record["rejects"])
    return wav, sr, record, stats


def test_the_report_plays_kept_clips_from_their_shards_and_rejected_ones_from_their_inputs(tmp_path):
    import soundfile as sf

    wav, sr, record, stats = _listened_run(tmp_path)
    assert [m["flac_offset"] % 512 for m in record["samples"]] == [0] * 6 and len(record["shards"]) == 2
    summary = {"segments_kept": 6, "segments_rejected": 2, "rejects_by_reason": {}}
    html = open(write_report(str(tmp_path), stats, summary, THRESHOLDS, 1.0)).read()
    players = re.findall(r'<audio controls preload="metadata" src="([^"]+)"', html)
    # at most 3 per quality band: 6 kept clips over 3.0-3.5 (2), 3.5-4.0 (2), >= 4.0 (1) and < 3.0 (1)
    groups = re.findall(r"<caption>(kept[^<]*|rejected[^<]*)</caption>", html)
    assert groups == [
        "kept, overall &lt; 3",
        "kept, overall 3-3.5",
        "kept, overall 3.5-4",
        "kept, overall &gt;= 4",
        "rejected, quality / quality_below_threshold",
        "rejected, segmentation / segment_too_short",
    ]
    assert len(players) == 7 and "audio unavailable" in html  # the moved input's clip cannot be read
    # a kept clip is the written audio itself, bit for bit; a rejected one the input's span
    written = {k: wav[k * sr // 2 : k * sr // 2 + sr] for k in range(6)}
    heard = []
    for name in players[:6]:
        clip, clip_sr = sf.read(tmp_path / "report" / name, dtype="float32")
        heard += [k for k, x in written.items() if clip_sr == sr and np.array_equal(clip, x)]
    assert sorted(heard) == list(range(6))
    rejected, rate = sf.read(tmp_path / "report" / players[6], dtype="float32")
    assert rate == 16000 and len(rejected) == 16000
    # text is escaped; the transcript, scores and reason are shown
    assert "clip 3 &lt;b&gt;" in html and "overall 1.2 &lt; 2.8 &lt;i&gt;" in html and "overall 3.65" in html
    record_json = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert record_json["dropped_for_length"] == {"segments": 1, "seconds": 1.0, "inputs": 0}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_the_players_load_in_chromium(tmp_path):
    _, _, _, stats = _listened_run(tmp_path)
    page = write_report(str(tmp_path), stats, {"segments_kept": 6}, THRESHOLDS, 1.0)
    dom = chromium(
        tmp_path,
        "--autoplay-policy=no-user-gesture-required",
        "--virtual-time-budget=10000",
        "--dump-dom",
        f"file://{page}",
    )
    assert 'data-audio="7/7"' in dom
    # and the check can fail: a clip that is not audio is flagged
    first = re.findall(r'src="(audio/[^"]+)"', open(page).read())[0]
    (tmp_path / "report" / first).write_bytes(b"not audio at all")
    dom = chromium(
        tmp_path,
        "--autoplay-policy=no-user-gesture-required",
        "--virtual-time-budget=10000",
        "--dump-dom",
        f"file://{page}",
    )
    assert 'data-audio="6/7"' in dom and 'class="missing"' in dom
