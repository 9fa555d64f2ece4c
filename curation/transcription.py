"""Rich-transcription stage: each live segment gets a `RichTranscript` (speaker turns, inline tags), or a reject.

Profiles:
- `s2` (qwen3-omni): the model writes speaker turns and vocal tags itself; its output is used as is.
- `local` (pocketsphinx): words with times and confidences; speaker turns come from diarization
  (curation.diarization) and each word goes to the speaker active at its midpoint.

Sidecar transcripts (`sample.source.text`, from a .txt/.lab beside the input or a manifest column) describe
a whole input, so they are used only when the input yielded a single segment (`file_rows == 1`): that
segment then holds all the detected speech of the input (long inputs decoded in several pieces do not
qualify). The ASR must agree with the sidecar (WER at most
`max_sidecar_wer`, else 'sidecar_disagreement'). In the local profile the sidecar then supplies the text
(it is usually better than the ASR; sidecar words take the speaker of the ASR words they align with); in
the s2 profile it only checks the model's richer output. A sidecar may itself carry speaker markers and
tags, in which case its turns are kept as written.

Reject reasons: empty_transcript, malformed_transcript, sidecar_disagreement, repeated_ngram, rate_outlier,
language_mismatch, unknown_tag (only with unknown_tags='reject'), transcription_failed, bad_row.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curation.batch import Batch, as_lists, audio, live, reject, sample, set_sample
from curation.diarization import SpeakerTurn, diarization_params, diarize
from curation.text_filters import (
    Verdict,
    check_empty,
    check_language,
    check_repeats,
    rate_verdicts,
    speech_rate,
)
from curation.wer import align, normalize_words, wer
from models.asr import load_transcriber
from models.speaker import load_speaker_embedder
from schemas.config import TranscriptionConfig
from schemas.sample import Sample
from schemas.transcript import (
    RichTranscript,
    TranscriptionResult,
    TranscriptParseError,
    Turn,
    WordConfidence,
    parse_turns,
    strip_tags,
)

STAGE = "transcription"
_TOKEN = re.compile(r"\[[^\]]*\]|[^\s\[]+")  # a tag, or a run of text up to whitespace or a tag


@dataclass
class _Row:
    i: int
    sample: Sample
    wav: np.ndarray
    sample_rate: int
    whole_input: bool

    @property
    def speech_s(self) -> float:
        return self.sample.vad.speech_s if self.sample.vad is not None else len(self.wav) / self.sample_rate


def _single_segment(batch: Batch, i: int) -> bool:
    """Whether the row is the only segment of its input (one piece, one row): a sidecar then describes it."""
    if "file_rows" not in batch or int(batch["file_rows"][i]) != 1:
        return False
    return int(batch.get("piece", [0] * (i + 1))[i]) == 0 and bool(batch.get("last_piece", [True] * (i + 1))[i])


def _turn_at(turns: Sequence[SpeakerTurn], t: float) -> int:
    return max(0, bisect.bisect_right([x.start_s for x in turns], t) - 1)


def _fill(values: list[int | None]) -> list[int]:
    """Unset entries take the previous set value (the next one at the start)."""
    first = next((v for v in values if v is not None), 0)
    out, last = [], first
    for v in values:
        last = v if v is not None else last
        out.append(last)
    return out


def _project_owners(tokens: Sequence[str], words: Sequence[str], word_owner: Sequence[int]) -> list[int]:
    """Owner (diarization turn) of each text token, through the word alignment of text and ASR words."""
    flat = [(u, k) for k, tok in enumerate(tokens) if not tok.startswith("[") for u in normalize_words(tok)]
    hyp, hyp_owner = [], []
    for w, o in zip(words, word_owner):
        for u in normalize_words(w):
            hyp.append(u)
            hyp_owner.append(o)
    owners: list[int | None] = [None] * len(tokens)
    for r, h in align([u for u, _ in flat], hyp):
        if r is not None and h is not None and owners[flat[r][1]] is None:
            owners[flat[r][1]] = hyp_owner[h]
    return _fill(owners)


def speaker_turns(words: Sequence[WordConfidence], turns: Sequence[SpeakerTurn], text: str | None = None) -> list[Turn]:
    """Transcript turns from timed words and diarization turns; with `text`, its tokens replace the words
    and take their speakers from the aligned words. Speakers are renumbered by first appearance."""
    word_owner = [_turn_at(turns, ((w.start_s or 0.0) + (w.end_s or 0.0)) / 2) for w in words]
    if text is None:
        tokens, owners = [w.word for w in words], word_owner
    else:
        tokens = _TOKEN.findall(text)
        owners = _project_owners(tokens, [w.word for w in words], word_owner)
    groups: list[list] = []  # [speaker, first diarization turn, last diarization turn, tokens]
    for tok, o in zip(tokens, owners):
        if groups and groups[-1][0] == turns[o].speaker:
            groups[-1][2] = max(groups[-1][2], o)
            groups[-1][3].append(tok)
        else:
            groups.append([turns[o].speaker, o, o, [tok]])
    order = {s: k for k, s in enumerate(dict.fromkeys(g[0] for g in groups))}
    return [Turn(speaker=order[s], text=" ".join(toks), start_s=turns[a].start_s, end_s=turns[b].end_s) for s, a, b, toks in groups]


class TranscriptionStage:
    """Callable over batches; tags outside the registry are kept or rejected per `cfg.unknown_tags`."""

    def __init__(self, cfg: TranscriptionConfig):
        if cfg.enabled and cfg.model.name == "pocketsphinx" and cfg.language not in (None, "en"):
            raise ValueError(f"transcription.language={cfg.language!r}: pocketsphinx transcribes English only; use qwen3-omni (the s2 profile)")
        self.cfg = cfg
        self.unknown_tags = cfg.unknown_tags
        self.transcriber = load_transcriber(cfg.model) if cfg.enabled else None
        self.embedder = None
        if cfg.enabled and cfg.speaker_model is not None and not self.transcriber.writes_speaker_turns:
            self.embedder = load_speaker_embedder(cfg.speaker_model)
            self.diarization = diarization_params(cfg.speaker_model)

    def __call__(self, batch: Batch) -> Batch:
        batch = as_lists(batch)
        if self.transcriber is None:
            return batch
        rows: list[_Row] = []
        for i in live(batch):
            try:
                wav = audio(batch, i)
                if wav.size == 0:
                    raise ValueError("empty audio")
                whole = _single_segment(batch, i)
                rows.append(_Row(i, sample(batch, i), wav, int(batch["sample_rate"][i]), whole))
            except Exception as exc:  # a row that cannot be read must not stop the batch
                reject(batch, i, STAGE, "bad_row", f"{type(exc).__name__}: {exc}")

        built: list[tuple[_Row, RichTranscript]] = []
        for row, result in zip(rows, self._transcribe(rows)):
            try:
                out = self._build(row, result)
            except Exception as exc:
                out = ("transcription_failed", f"{type(exc).__name__}: {exc}")
            if isinstance(out, RichTranscript):
                built.append((row, out))
            else:
                reject(batch, row.i, STAGE, *out)

        passed: list[tuple[_Row, RichTranscript]] = []
        for row, t in built:
            verdict = self._check(row, t)
            if verdict:
                reject(batch, row.i, STAGE, *verdict)
            else:
                passed.append((row, t))
        rates = rate_verdicts([speech_rate(t, row.speech_s) for row, t in passed], self.cfg.rate_iqr_k)
        for (row, t), verdict in zip(passed, rates):
            if verdict:
                reject(batch, row.i, STAGE, *verdict)
            else:
                set_sample(batch, row.i, row.sample.model_copy(update={"transcript": t}))
        return batch

    def _transcribe(self, rows: list[_Row]) -> list[TranscriptionResult | str]:
        """One model call per sample rate; if it raises, row by row so that only the bad row fails."""
        results: list[TranscriptionResult | str] = [""] * len(rows)
        for rate in sorted({r.sample_rate for r in rows}):
            idx = [k for k, r in enumerate(rows) if r.sample_rate == rate]
            try:
                out = self.transcriber.transcribe([rows[k].wav for k in idx], rate, language=self.cfg.language)
            except Exception:
                out = []
                for k in idx:
                    try:
                        out.extend(self.transcriber.transcribe([rows[k].wav], rate, language=self.cfg.language))
                    except Exception as exc:
                        out.append(f"{type(exc).__name__}: {exc}")
            for k, res in zip(idx, out):
                results[k] = res
        return results

    def _build(self, row: _Row, result: TranscriptionResult | str) -> RichTranscript | tuple[str, str]:
        if isinstance(result, str):
            return "transcription_failed", result
        if result.transcript is None:
            reason = "empty_transcript" if not result.raw.strip() else "malformed_transcript"
            return reason, f"{result.error}; raw output {result.raw[:300]!r}"
        asr = result.transcript
        sidecar = row.sample.source.text if self.cfg.use_sidecar and row.whole_input and (row.sample.source.text or "").strip() else None
        side_turns = None
        if sidecar is not None:
            try:
                side_turns = parse_turns(sidecar, implicit_speaker=True)
            except TranscriptParseError as exc:
                return "malformed_transcript", f"sidecar transcript: {exc}"
            side_plain = " ".join(strip_tags(t.text) for t in side_turns)
            disagreement = wer(side_plain, asr.plain_text())
            if disagreement > self.cfg.max_sidecar_wer:
                return "sidecar_disagreement", (f"ASR vs sidecar WER {disagreement:.2f} > max_sidecar_wer {self.cfg.max_sidecar_wer}; "
                                                f"sidecar {side_plain[:150]!r}, ASR {asr.plain_text()[:150]!r}")
        if self.transcriber.writes_speaker_turns:
            return asr

        model_id = asr.model_id
        if side_turns is not None and len({t.speaker for t in side_turns}) > 1:
            return RichTranscript(turns=side_turns, language=asr.language, words=asr.words, model_id=model_id + "+sidecar")
        duration = len(row.wav) / row.sample_rate
        diar = [SpeakerTurn(0, 0.0, duration)]
        if self.embedder is not None:
            diar = diarize(row.wav, row.sample_rate, self.embedder, self.diarization)
            model_id += f"+{self.embedder.model_id}"
        text = None
        if side_turns is not None:
            text, model_id = " ".join(t.text for t in side_turns), model_id + "+sidecar"
        return RichTranscript(turns=speaker_turns(asr.words or [], diar, text), language=asr.language, words=asr.words, model_id=model_id)

    def _check(self, row: _Row, t: RichTranscript) -> Verdict:
        verdict = (check_empty(t) or check_repeats(t, self.cfg.max_repeated_ngram)
                   or check_language(t, self.cfg.language, [row.sample.source.language, t.language]))
        if verdict is None and self.unknown_tags == "reject" and t.unknown_tags:
            verdict = "unknown_tag", f"tags outside the registry: {', '.join(t.unknown_tags)}"
        return verdict
