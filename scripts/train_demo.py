"""`make train-demo`: curate examples/, tokenize with a tiny random codec, train a tiny Dual-AR on CPU, generate.

  OUT/codec/          `s2 codec init --tiny`: a tiny codec with random weights
  OUT/curated/        `s2 curate --input examples/audio --set codec.enabled=true ...` (the local profile with the
                      pipeline's tokenization stage on that codec): shards of KEY.flac + KEY.json + KEY.codes.npy
  OUT/metrics.jsonl   `s2 train --config jobs/configs/train_demo.yaml`: step, loss components, tokens/s, MFU
  OUT/checkpoints/, OUT/model/   the trainer's checkpoints and the final model (released format)
  OUT/sample.wav      `s2 speak` with the trained model, the first clip as the reference voice, decoded by the codec

The codec and the model are tiny and start from random weights, and five clips teach a model nothing about
speech: sample.wav is noise. The demo proves the wiring from raw audio to generated audio, not quality.

  .venv/bin/python -m scripts.train_demo [--out train_out] [--data-only] [--set runtime.max_steps=50 ...]
Steps whose output exists are skipped (delete OUT to start over); training continues from its checkpoints.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

from jobs.config import add_overrides

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "jobs" / "configs" / "train_demo.yaml"
TEXT = "<|speaker:0|>Hello from a tiny model [laugh] that knows five clips."


def tiny_codec(out: Path) -> Path:
    from jobs import codec as codec_job

    weights = out / "codec" / "codec.pth"
    if not weights.is_file():
        codec_job.main(["init", "--tiny", str(out / "codec")])
    return weights


def curate(out: Path, codec: Path) -> Path:
    """examples/ curated by the local profile, each kept segment tokenized in the pipeline by the codec."""
    from jobs import curate as curate_job

    index = out / "curated" / "index.json"
    if not index.is_file():
        codec_settings = [
            "codec.enabled=true",
            f"codec.model.checkpoint={codec}",
            "codec.model.device=cpu",
            "codec.model.batch_size=4",
        ]
        args = ["--input", str(ROOT / "examples" / "audio"), "--output", str(out / "curated")]
        code = curate_job.main(args + [a for s in codec_settings for a in ("--set", s)])
        if code != 0:
            raise SystemExit(f"curation failed ({code})")
    return index


def reference_clip(index: Path, out: Path) -> tuple[Path, str]:
    """The first sample's audio (as a file for `s2 speak --reference`) and its transcript."""
    listing = json.loads(index.read_text())
    with tarfile.open(index.parent / listing["shardlist"][0]["url"]) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    key = sorted(n for n in members if n.endswith(".json"))[0].removesuffix(".json")
    path = out / "reference.flac"
    path.write_bytes(members[f"{key}.flac"])
    transcript = json.loads(members[f"{key}.json"])["transcript"]
    return path, "".join(f"<|speaker:{t['speaker']}|>{t['text']}" for t in transcript["turns"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="train_out", help="folder for everything the demo writes")
    p.add_argument("--data-only", action="store_true", help="stop after curating (what make bench-train reads)")
    add_overrides(p)
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    index = curate(out, tiny_codec(out))
    print(f"tokenized shards: {index}")
    if args.data_only:
        return 0

    from jobs import speak, train

    overrides = [f"data.index={index}", f"runtime.out={out}", *args.overrides]
    if train.run(argparse.Namespace(config=str(CONFIG), overrides=overrides)) != 0:
        return 1
    reference, reference_text = reference_clip(index, out)
    speak_args = [
        "--model", str(out / "model"), "--codec", str(out / "codec" / "codec.pth"), "--text", TEXT,
        "--out", str(out / "sample.wav"), "--reference", str(reference), "--reference-text", reference_text,
        "--max-new-tokens", "200",
    ]  # fmt: skip
    if speak.main(speak_args) != 0:
        return 1
    print(
        "\nThe codec and the Dual-AR model are tiny and were initialised at random; five clips teach them nothing "
        "about speech. sample.wav is noise: the demo shows the path from raw audio to generated audio, not quality.\n"
        f"model:   {out / 'model'}  (released format: s2 speak --model)\n"
        f"codec:   {out / 'codec' / 'codec.pth'}\n"
        f"metrics: {out / 'metrics.jsonl'}\n"
        f"audio:   {out / 'sample.wav'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
