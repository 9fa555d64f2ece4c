"""Reconstruction quality of a codec on held-out clips: the audio through encode and decode, as users run it.

Per clip: mel distance (the multi-scale mel L1 of training, DAC's seven scales; torch), STOI (`pystoi`, at the
codec's rate), wideband PESQ (`pesq`, ITU-T P.862.2, on both signals resampled to 16 kHz; None for a clip it cannot
score, such as silence), SI-SDR in dB (scale-invariant SDR, Le Roux et al. 2019: a torch one-liner). Over all clips:
their means and, per codebook, the perplexity of the codes used (exp of the entropy of the code histogram) and the
fraction of entries used.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from models.codec.model import S2CodecModel
from models.signal import resample
from training.codec.generator import codebook_perplexity
from training.codec.losses import MultiScaleMelLoss

PESQ_RATE = 16000
METRICS = ("mel_distance", "stoi", "pesq", "si_sdr")
DAC_MEL_WINDOWS = [32, 64, 128, 256, 512, 1024, 2048]
DAC_MEL_BINS = [5, 10, 20, 40, 80, 160, 320]


def wav_name(index: int, key: str) -> str:
    """A clip's reconstruction file: numbered, as two sources may hold clips of the same name."""
    return f"{index:02d}_" + key.replace("/", "__").rsplit(".", 1)[0] + ".wav"


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(||a s||^2 / ||a s - s_hat||^2) with a = <s_hat, s> / ||s||^2 (zero-mean signals)."""
    s = torch.from_numpy(reference).double() - float(reference.mean())
    e = torch.from_numpy(estimate).double() - float(estimate.mean())
    target = (e @ s) / (s @ s).clamp_min(1e-12) * s
    return float(10 * torch.log10((target @ target).clamp_min(1e-12) / ((target - e) @ (target - e)).clamp_min(1e-12)))


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    from pystoi import stoi as pystoi_stoi

    return float(pystoi_stoi(reference, estimate, sample_rate, extended=False))


def pesq_wideband(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float | None:
    from pesq import PesqError, pesq

    ref, est = resample(reference, sample_rate, PESQ_RATE), resample(estimate, sample_rate, PESQ_RATE)
    try:
        return float(pesq(PESQ_RATE, ref, est, "wb"))
    except PesqError:  # no utterance found (silence, too short): this clip has no PESQ
        return None


class CodecEvaluator:
    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self.mel = MultiScaleMelLoss(sample_rate, DAC_MEL_WINDOWS, DAC_MEL_BINS)

    def clip_metrics(self, reference: np.ndarray, estimate: np.ndarray) -> dict:
        mel = float(self.mel(torch.from_numpy(estimate)[None], torch.from_numpy(reference)[None]))
        return {
            "mel_distance": mel,
            "stoi": stoi(reference, estimate, self.sample_rate),
            "pesq": pesq_wideband(reference, estimate, self.sample_rate),
            "si_sdr": si_sdr(reference, estimate),
        }

    @torch.no_grad()
    def reconstruct(self, codec: S2CodecModel, audio: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """One clip through encode and decode in float32 on the CPU: (audio of the same length, codes [1, n, T])."""
        x = torch.from_numpy(np.ascontiguousarray(audio))[None]
        codes, _ = codec.encode(x, torch.tensor([x.shape[-1]]))
        return codec.decode(codes)[0, : x.shape[-1]].numpy(), codes

    def evaluate(self, codec: S2CodecModel, clips: list[np.ndarray]) -> tuple[dict, list[dict], list[np.ndarray]]:
        """(summary, per-clip metrics, reconstructions)."""
        was_training = codec.training
        codec.eval()
        rows, outputs, codes = [], [], []
        for audio in clips:
            estimate, clip_codes = self.reconstruct(codec, audio)
            rows.append(self.clip_metrics(audio, estimate))
            outputs.append(estimate)
            codes.append(clip_codes[0])
        codec.train(was_training)
        summary = {"clips": len(clips)}
        for name in METRICS:
            values = [r[name] for r in rows if r[name] is not None]
            summary[name] = sum(values) / len(values) if values else None
        all_codes = torch.cat(codes, dim=-1)[None]
        sizes = codec.config.codebook_sizes
        summary["codebook_perplexity"] = codebook_perplexity(all_codes, sizes)
        summary["codebook_used"] = [len(torch.unique(all_codes[0, i])) / size for i, size in enumerate(sizes)]
        return summary, rows, outputs


def table(summaries: dict[str, dict]) -> str:
    """A text table: one row per named summary, one column per metric."""
    header = f"{'':<10}" + "".join(f"{m:>14}" for m in (*METRICS, "perplexity_0"))
    lines = [header]
    for name, s in summaries.items():
        cells = [s[m] for m in METRICS] + [s["codebook_perplexity"][0]]
        lines.append(
            f"{name:<10}" + "".join(f"{'-':>14}" if v is None or math.isnan(v) else f"{v:>14.4f}" for v in cells)
        )
    return "\n".join(lines)
