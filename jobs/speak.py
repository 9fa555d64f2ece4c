"""`s2 speak`: text to a WAV file, with the Dual-AR model and the S2 codec.

  s2 speak --model DIR --codec CKPT --text "<|speaker:0|>Well [laugh] that went well." --out out.wav
      [--reference ref.wav --reference-text "what ref.wav says"] [--seed 0] [--temperature 0.8] [--top-p 0.8]
      [--top-k 30] [--max-new-tokens 2048] [--device auto] [--dtype float32]

--model is a Dual-AR folder in the released format (S2-Pro, one converted from Qwen3, or a tiny random one from
`models.dual_ar.init_tiny`); --codec is a `codec.pth` or its folder. A reference voice is encoded by the codec and
goes, with its transcript, into the system turn. When the model or the codec has random weights, a warning says
that the audio means nothing.

`python -m jobs.speak ...` runs it directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import storage
from jobs.config import entrypoint, subcommand
from schemas.config import ModelSpec


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="Dual-AR checkpoint folder (released format)")
    p.add_argument("--codec", required=True, help="S2 codec: codec.pth or its folder")
    p.add_argument(
        "--text", required=True, help="what to say: plain text, <|speaker:i|> turns, vocal tags like [laugh]"
    )
    p.add_argument("--out", required=True, help="WAV file to write (44.1 kHz)")
    p.add_argument("--reference", help="audio of the voice to clone (WAV, FLAC, OGG, MP3)")
    p.add_argument("--reference-text", help="transcript of --reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=30)
    p.add_argument("--max-new-tokens", type=int, default=2048, help="most frames to generate (21.5 per second)")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="on GPU; CPU runs float32"
    )


def _read_audio(path: str) -> tuple[np.ndarray, int]:
    import soundfile

    from models.signal import to_mono

    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return to_mono(audio), rate


def run(args: argparse.Namespace) -> int:
    if (args.reference is None) != (args.reference_text is None):
        print("error: --reference and --reference-text go together", file=sys.stderr)
        return 2
    import soundfile

    from models.checkpoints import CheckpointUnavailableError
    from models.codec import S2Codec
    from models.dual_ar import Reference, S2DualAR

    options = {
        "seed": args.seed,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "max_new_tokens": args.max_new_tokens,
    }
    try:
        model = S2DualAR.from_spec(
            ModelSpec(
                name="s2-dual-ar",
                checkpoint=args.model,
                device=args.device,
                dtype=args.dtype,
                batch_size=1,
                options=options,
            )
        )
        codec = S2Codec.from_spec(
            ModelSpec(name="s2-codec", checkpoint=args.codec, device=args.device, dtype=args.dtype)
        )
    except (CheckpointUnavailableError, ValueError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 2
    for what, random_init in (("model", model.random_init), ("codec", codec.random_init)):
        if random_init:
            print(
                f"warning: the {what} ({getattr(args, what)}) has random-init weights: the audio will be noise, not speech",
                file=sys.stderr,
            )
    if codec.num_codebooks != model.num_codebooks:
        print(
            f"error: the model generates {model.num_codebooks} codebooks, the codec has {codec.num_codebooks}",
            file=sys.stderr,
        )
        return 2

    references = []
    if args.reference:
        try:
            audio, rate = _read_audio(args.reference)
            references = [Reference(args.reference_text, codec.encode([audio], rate)[0])]
        except (OSError, RuntimeError, ValueError) as exc:  # unreadable or empty audio
            print(f"error: --reference {args.reference}: {exc}", file=sys.stderr)
            return 2
    codes = model.synthesize([args.text], [references], codebook_sizes=codec.codebook_sizes)[0]
    if codes.shape[1] == 0:
        print("error: the model ended the utterance before its first frame; try another --seed", file=sys.stderr)
        return 1
    audio = codec.decode([codes])[0]
    out = Path(args.out)
    with storage.local_atomic(out) as partial:
        soundfile.write(partial, audio, codec.sample_rate, format="WAV")
    print(f"wrote {out}: {len(audio) / codec.sample_rate:.2f} s ({codes.shape[1]} frames)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    subcommand(sub, "speak", "text to speech with the Dual-AR model and the S2 codec", __doc__, add_arguments, run)


def main(argv: list[str] | None = None) -> int:
    return entrypoint("s2 speak", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
