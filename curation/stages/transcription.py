"""Rich-transcription stage: each live segment gets a `RichTranscript` (speaker turns, inline tags), or a reject.

Profiles:
- `s2` (qwen3-omni): the model writes speaker turns and vocal tags itself; its output is used as is.
- `local` (pocketsphinx): words with times and confidences; speaker turns come from diarization
  (curation.policy.diarization) and each word goes to the speaker active at its midpoint.

Sidecar transcripts (`sample.source.text`, from a .txt/.lab beside the input or a manifest column) describe
a whole input, so they are used only when the input yielded a single segment (`file_rows == 1`): that
segment then holds all the detected speech of the input (long inputs decoded in several pieces do not
qualify). The ASR must agree with the sidecar (WER at most
`max_sidecar_wer`, else 'sidecar_disagreement'). In the local profile the sidecar then supplies the text
(it is usually better than the ASR; sidecar words take the speaker of the ASR words they align with); in
the s2 profile it only checks the model's richer output. A sidecar may itself carry speaker markers and
tags, in which case its turns are kept as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.policy.diarization import SpeakerTurn, diarization_params, diarize
from curation.policy.text_filters import Verdict, check_empty, check_language, check_rate, check_repeats, speech_rate
from curation.policy.turns import speaker_turns
from curation.policy.wer import wer
from curation.row import Row
from curation.stages.base import CurationStage
from models import registry
from schemas.config import TranscriptionConfig
from schemas.rejects import RejectReason, Stage
from schemas.transcript import RichTranscript, TranscriptionResult, TranscriptParseError, parse_turns, strip_tags


@dataclass
class _Item:
    row: Row
    wav: np.ndarray
    whole_input: bool

    @property
    def speech_s(self) -> float:
        s = self.row.sample
        return s.vad.speech_s if s.vad is not None else len(self.wav) / self.row.analysis_rate


def single_segment(row: Row) -> bool:
    """Whether the row is the only segment of its input (one piece, one row): a sidecar then describes it."""
    return row.file_rows == 1 and row.piece == 0 and row.last_piece


class TranscriptionStage(CurationStage):
    """Tags outside the registry are kept or rejected per `cfg.unknown_tags`."""

    name = Stage.TRANSCRIPTION
    reads = ("audio", "sample_rate", "sample", "file_rows", "piece", "last_piece")
    writes = ("sample.transcript",)

    def __init__(self, cfg: TranscriptionConfig, on_error="reject"):
        super().__init__(cfg.resources, on_error)
        if cfg.model.name == "pocketsphinx" and cfg.language not in (None, "en"):
            raise ValueError(
                f"transcription.language={cfg.language!r}: pocketsphinx transcribes English only; use qwen3-omni (the s2 profile)"
            )
        self.cfg = cfg

    def setup(self) -> None:
        self.transcriber = registry.build("asr", self.cfg.model, "transcription.model")
        self.embedder = None
        if self.cfg.speaker_model is not None and not self.transcriber.writes_speaker_turns:
            self.embedder = registry.build("speaker", self.cfg.speaker_model, "transcription.speaker_model")
            self.diarization = diarization_params(self.cfg.speaker_model)

    def process_batch(self, rows: list[Row]) -> list[Row]:
        items: list[_Item] = []
        for row in rows:
            if not row.live:
                continue
            if not row.audio:
                row.rejected(self.name, RejectReason.BAD_ROW, "ValueError: empty audio")
            else:
                items.append(_Item(row, row.analysis_waveform(), single_segment(row)))

        transcribe = lambda waves, rate: self.transcriber.transcribe(waves, rate, language=self.cfg.language)  # noqa: E731
        built: list[tuple[_Item, RichTranscript]] = []
        results = dict(
            (id(r), res)
            for r, res in self.call_model([i.row for i in items], transcribe, RejectReason.TRANSCRIPTION_FAILED)
        )
        for item in items:
            if id(item.row) not in results:
                continue
            try:
                out = self._build(item, results[id(item.row)])
            except Exception as exc:
                self.fail(item.row, RejectReason.TRANSCRIPTION_FAILED, exc)
                continue
            if isinstance(out, RichTranscript):
                built.append((item, out))
            else:
                item.row.rejected(self.name, *out)

        for item, t in built:
            verdict = self._check(item, t)
            if verdict:
                item.row.rejected(self.name, *verdict)
            else:
                item.row.sample.transcript = t
        return rows

    def _build(self, item: _Item, result: TranscriptionResult) -> RichTranscript | tuple[RejectReason, str]:
        if result.transcript is None:
            reason = RejectReason.EMPTY_TRANSCRIPT if not result.raw.strip() else RejectReason.MALFORMED_TRANSCRIPT
            return reason, f"{result.error}; raw output {result.raw[:300]!r}"
        asr = result.transcript
        source_text = item.row.sample.source.text
        sidecar = source_text if self.cfg.use_sidecar and item.whole_input and (source_text or "").strip() else None
        side_turns = None
        if sidecar is not None:
            try:
                side_turns = parse_turns(sidecar, implicit_speaker=True)
            except TranscriptParseError as exc:
                return RejectReason.MALFORMED_TRANSCRIPT, f"sidecar transcript: {exc}"
            side_plain = " ".join(strip_tags(t.text) for t in side_turns)
            disagreement = wer(side_plain, asr.plain_text())
            if disagreement > self.cfg.max_sidecar_wer:
                return RejectReason.SIDECAR_DISAGREEMENT, (
                    f"ASR vs sidecar WER {disagreement:.2f} > max_sidecar_wer {self.cfg.max_sidecar_wer}; "
                    f"sidecar {side_plain[:150]!r}, ASR {asr.plain_text()[:150]!r}"
                )
        if self.transcriber.writes_speaker_turns:
            return asr

        model_id = asr.model_id
        if side_turns is not None and len({t.speaker for t in side_turns}) > 1:
            return RichTranscript(
                turns=side_turns, language=asr.language, words=asr.words, model_id=model_id + "+sidecar"
            )
        duration = len(item.wav) / item.row.analysis_rate
        diar = [SpeakerTurn(0, 0.0, duration)]
        if self.embedder is not None:
            diar = diarize(item.wav, item.row.analysis_rate, self.embedder, self.diarization)
            model_id += f"+{self.embedder.model_id}"
        text = None
        if side_turns is not None:
            text, model_id = " ".join(t.text for t in side_turns), model_id + "+sidecar"
        return RichTranscript(
            turns=speaker_turns(asr.words or [], diar, text), language=asr.language, words=asr.words, model_id=model_id
        )

    def _check(self, item: _Item, t: RichTranscript) -> Verdict:
        verdict = (
            check_empty(t)
            or check_repeats(t, self.cfg.max_repeated_ngram)
            or check_language(t, self.cfg.language, [item.row.sample.source.language, t.language])
            or check_rate(speech_rate(t, item.speech_s))
        )
        if verdict is None and self.cfg.unknown_tags == "reject" and t.unknown_tags:
            verdict = RejectReason.UNKNOWN_TAG, f"tags outside the registry: {', '.join(t.unknown_tags)}"
        return verdict
