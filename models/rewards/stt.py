"""R_STT: how well the generated audio says the target rich transcript, speaker changes and vocal tags included.

- `TeacherForcedStt` (the `s2` profile, Qwen3-Omni): the transcriber's log-probability of every token of the target
  given the audio. Each token costs its negative log-probability times its weight: `speaker_weight` for the tokens
  of a speaker marker (the audio missed or misplaced a speaker change), `vocal_weight` for those of a vocal tag (the
  audio missed a [laugh] or a [whispers]), 1 for words. R_STT = exp(-cost / tokens).
- `OfflineStt` (the `local` profile, pocketsphinx, which can only transcribe): an approximation from what the
  local transcription gives. Target words are aligned with the recognised words; each costs 1 - the recognised
  word's confidence (1 when missed or misrecognised), each inserted word 1. Speaker markers are checked as the
  local profile finds speakers, with its speaker embedder: each turn's aligned span is cut at its longest pauses
  into pieces, and every two neighbouring pieces should sound like one voice exactly when the target gives them
  one speaker; a disagreement costs up to `speaker_weight`. R_STT = max(0, 1 - cost / target words). Vocal tags
  are not checked. Every result's metadata says so (`stt.method`).
"""

from __future__ import annotations

import re

import numpy as np

from models.rewards.base import ItemError, ModelReward, Prepared
from models.wer import align, normalize_words
from schemas.config import ModelSpec
from schemas.rewards import AudioLimits, RewardResult, SttConfig
from schemas.transcript import strip_tags

_MARKER = re.compile(r"<\|speaker:\d+\|>")
_TAG = re.compile(r"\[[^\[\]]*\]")
_KINDS = ("text", "speaker", "vocal")


def token_kinds(text: str, offsets: list[tuple[int, int]]) -> np.ndarray:
    """Per token (character offsets into canonical `text`): 0 word, 1 speaker marker, 2 vocal tag."""
    markers = [m.span() for m in _MARKER.finditer(text)]
    tags = [m.span() for m in _TAG.finditer(text)]
    kinds = np.zeros(len(offsets), dtype=np.int64)
    for k, (s, e) in enumerate(offsets):
        if any(s < b and a < max(e, s + 1) for a, b in markers):
            kinds[k] = 1
        elif any(s < b and a < max(e, s + 1) for a, b in tags):
            kinds[k] = 2
    return kinds


class TeacherForcedStt(ModelReward):
    name = "stt"
    needs_text = True

    def __init__(self, asr, cfg: SttConfig, limits: AudioLimits):
        super().__init__(limits)
        self.asr, self.cfg = asr, cfg
        self.sample_rate = asr.sample_rate
        self.weights = np.array([1.0, cfg.speaker_weight, cfg.vocal_weight])
        self.metadata = {
            "stt.model": asr.model_id,
            "stt.method": f"teacher-forced log-probabilities of the target; speaker-marker tokens weigh {cfg.speaker_weight:g}, "
            f"vocal-tag tokens {cfg.vocal_weight:g}",
        }

    def _score(self, prepared: list[Prepared]) -> list[RewardResult]:
        texts = [p.target.render() for p in prepared]
        logprobs = self.asr.teacher_forced_logprobs([p.audio for p in prepared], self.sample_rate, texts)
        out = []
        for text, logp in zip(texts, logprobs):
            # the same call the transcriber tokenizes the target with, plus the offsets that locate markers and tags
            enc = self.asr.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            if len(enc["input_ids"]) != len(logp):
                raise ValueError(f"{len(logp)} log-probabilities for {len(enc['input_ids'])} target tokens")
            kinds = token_kinds(text, enc["offset_mapping"])
            nll = -np.asarray(logp, dtype=np.float64)
            score = float(np.exp(-(self.weights[kinds] * nll).sum() / len(nll)))
            components = {"stt": score, "stt.nll": float(nll.mean()), "stt.tokens": float(len(nll))}
            for k, kind in enumerate(_KINDS):
                if (kinds == k).any():
                    components[f"stt.nll_{kind}"] = float(nll[kinds == k].mean())
            out.append(RewardResult(score=score, components=components, metadata=self.metadata))
        return out


def turn_pieces(words: list[tuple[float, float]], min_s: float) -> list[tuple[float, float]]:
    """One turn's word times (in order) -> spans of at least `min_s` where possible, cut at the longest pauses first
    (speakers change at pauses)."""
    start, end = words[0][0], words[-1][1]
    cuts: list[float] = []
    for k in sorted(range(len(words) - 1), key=lambda k: (words[k][1] - words[k + 1][0], k)):
        at = (words[k][1] + words[k + 1][0]) / 2
        bounds = sorted([start, end, at, *cuts])
        if all(b - a >= min_s for a, b in zip(bounds, bounds[1:])):
            cuts.append(at)
    bounds = sorted([start, end, *cuts])
    return list(zip(bounds, bounds[1:]))


class OfflineStt(ModelReward):
    name = "stt"
    needs_text = True

    def __init__(self, asr, speaker, speaker_spec: ModelSpec | None, cfg: SttConfig, limits: AudioLimits):
        super().__init__(limits)
        self.asr, self.speaker, self.cfg = asr, speaker, cfg
        self.sample_rate = asr.sample_rate
        if speaker is not None and speaker_spec.name not in cfg.same_speaker_similarity:
            raise ValueError(f"stt.same_speaker_similarity: no threshold for speaker model {speaker_spec.name!r}")
        self.threshold = cfg.same_speaker_similarity[speaker_spec.name] if speaker is not None else None
        checked = (
            f"speaker markers checked with {speaker.model_id} embeddings of the aligned turns"
            if speaker is not None
            else "speaker markers not checked (no speaker model)"
        )
        self.metadata = {
            "stt.model": asr.model_id + (f"+{speaker.model_id}" if speaker is not None else ""),
            "stt.method": f"offline approximation: word confidences and WER against the target's words; {checked}; vocal tags not checked",
        }

    def prepare(self, item) -> Prepared:
        p = super().prepare(item)
        if not normalize_words(p.target.plain_text()):
            raise ItemError("text: no words to compare (the offline R_STT checks words)")
        return p

    def _score(self, prepared: list[Prepared]) -> list[RewardResult]:
        heard = self.asr.transcribe([p.audio for p in prepared], self.sample_rate)
        words = [self._compare(p, r) for p, r in zip(prepared, heard)]
        agreements = self._speaker_agreements(prepared, [pieces for *_, pieces in words])
        out = []
        for (n_ref, word_cost, errors, confidence, _), agree in zip(words, agreements):
            speaker_cost = self.cfg.speaker_weight * float((1.0 - agree).sum())
            score = max(0.0, 1.0 - (word_cost + speaker_cost) / n_ref)
            components = {
                "stt": score,
                "stt.wer": errors / n_ref,
                "stt.word_confidence": confidence,
                "stt.words": float(n_ref),
            }
            if agree.size:
                components |= {"stt.speaker_agreement": float(agree.mean()), "stt.speaker_pairs": float(agree.size)}
            out.append(RewardResult(score=score, components=components, metadata=self.metadata))
        return out

    def _compare(self, p: Prepared, heard) -> tuple[int, float, int, float, list[tuple[int, float, float]]]:
        """(target words, word cost, word errors, mean confidence of the target words, speaker pieces)."""
        ref, turn_of = [], []
        for k, turn in enumerate(p.target.turns):
            tokens = normalize_words(strip_tags(turn.text))
            ref += tokens
            turn_of += [k] * len(tokens)
        hyp, conf, times = [], [], []
        for w in heard.transcript.words if heard.transcript is not None else []:
            for token in normalize_words(w.word):
                hyp.append(token)
                conf.append(w.confidence)
                times.append((w.start_s, w.end_s))
        pairs = align(ref, hyp)
        credit = np.zeros(len(ref))
        spans: dict[int, list[tuple[float, float]]] = {}
        errors = 0
        for r, h in pairs:
            if r is not None and h is not None:
                spans.setdefault(turn_of[r], []).append(times[h])  # a misheard word still says when the turn was spoken
                if ref[r] == hyp[h]:
                    credit[r] = conf[h]
                    continue
            errors += 1
        insertions = sum(1 for r, _ in pairs if r is None)
        pieces = [
            (p.target.turns[k].speaker, s, e)
            for k in sorted(spans)
            for s, e in turn_pieces(spans[k], self.cfg.speaker_piece_s)
        ]
        # a piece under half the length cannot be told apart reliably: it is not judged
        pieces = [piece for piece in pieces if piece[2] - piece[1] >= self.cfg.speaker_piece_s / 2]
        return len(ref), float((1.0 - credit).sum()) + insertions, errors, float(credit.mean()), pieces

    def _speaker_agreements(
        self, prepared: list[Prepared], pieces: list[list[tuple[int, float, float]]]
    ) -> list[np.ndarray]:
        """Per item, for every two neighbouring pieces: how much their voices agree with the target's speakers."""
        if self.speaker is None:
            return [np.zeros(0) for _ in prepared]
        sr = self.sample_rate
        clips = [
            p.audio[int(s * sr) : int(e * sr)] for p, item in zip(prepared, pieces) for _, s, e in item if len(item) > 1
        ]
        emb = self.speaker.embed(clips, sr) if clips else np.zeros((0, 1))
        out, at = [], 0
        for item in pieces:
            if len(item) < 2:
                out.append(np.zeros(0))
                continue
            e = emb[at : at + len(item)]
            at += len(item)
            cos = (e[:-1] * e[1:]).sum(axis=1)
            same = np.array([a[0] == b[0] for a, b in zip(item, item[1:])])
            margin = np.where(same, cos - self.threshold, self.threshold - cos) / self.cfg.similarity_softness
            out.append(1.0 / (1.0 + np.exp(-margin)))
        return out
