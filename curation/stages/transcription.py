"""Rich-transcription stage: each live segment gets a `RichTranscript` (speaker turns, inline tags) and a language with
how it was decided, or a reject.

Profiles:
- `s2` (qwen3-omni): the model writes speaker turns and vocal tags itself, and names the language first
  (models/asr/qwen3_omni.py); its output is used as is. With a speaker model, the segment's voices are kept on the
  row too, so that its turns get source-level ids.
- `local` (pocketsphinx): words with times and confidences; speaker turns come from diarization
  (curation.policy.diarization) and each word goes to the speaker active at its midpoint. The segment's voices are
  kept on the row (`row.speakers`) for source-level diarization (curation.stages.source.SourceSpeakers).

Language. A language given with the input (manifest column) or for the job (`transcription.language`) is the
sample's; one the transcriber cannot transcribe is rejected ('language_unsupported') before decoding. Otherwise the
language is the transcriber's: Qwen3-Omni names it; pocketsphinx knows only English and cannot detect another
language, so it must vouch for every segment it keeps with its own evidence (`language_gate`: acoustic fit per frame
and mean word confidence), or the segment is rejected: 'language_unsupported' when no language was given (speech it
cannot tell from a foreign language), 'low_asr_confidence' when it was given as English.

Sidecar transcripts (`sample.source.text`, from a .txt/.lab beside the input or a manifest column) describe
a whole input, so they are used only when the input yielded a single segment (`file_rows == 1`): that
segment then holds all the detected speech of the input (long inputs decoded in several pieces do not
qualify). The ASR must agree with the sidecar (WER at most
`max_sidecar_wer`, else 'sidecar_disagreement'). In the local profile the sidecar then supplies the text
(it is usually better than the ASR; sidecar words take the speaker of the ASR words they align with), and its
agreement vouches for the language; in the s2 profile it only checks the model's richer output. A sidecar may itself
carry speaker markers and tags, in which case its turns are kept as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.policy.diarization import (
    SpeakerTurn,
    VoicePlan,
    diarization_params,
    diarize_segment,
    embed_voices,
)
from curation.policy.overlap import overlap_seconds
from curation.policy.text_filters import Verdict, check_empty, check_language, check_rate, check_repeats, speech_rate
from curation.policy.turns import speaker_turns
from curation.row import Row, SpeakerEvidence
from curation.stages.base import CurationStage
from models import registry
from models.wer import wer
from schemas.config import TranscriptionConfig
from schemas.rejects import RejectReason, Stage
from schemas.transcript import RichTranscript, TranscriptionResult, TranscriptParseError, parse_turns, strip_tags


def base_language(code: str | None) -> str | None:
    """'en-US' -> 'en'; None stays None."""
    return code.lower().split("-")[0].split("_")[0] if code else None


@dataclass
class _Item:
    row: Row
    wav: np.ndarray
    whole_input: bool
    language: str | None  # given with the input or for the job
    language_source: str  # 'manifest', 'config' or 'unknown'
    sidecar_used: bool = False
    turn_text: str | None = None  # the sidecar's text, whose tokens take the speakers of the ASR words
    speakers: str | None = (
        None  # once the segment is kept: 'diarize' (turns from its voices) or 'voices' (model's turns)
    )

    @property
    def speech_s(self) -> float:
        s = self.row.sample
        return s.vad.speech_s if s.vad is not None else len(self.wav) / self.row.analysis_rate


def single_segment(row: Row) -> bool:
    """Whether the row is the only segment of its input (one piece, one row): a sidecar then describes it."""
    return row.file_rows == 1 and row.piece == 0 and row.last_piece


def gate_score(evidence: dict[str, float], confidence_weight: float) -> float:
    """The offline recogniser's evidence as one number: acoustic score per frame + weight x mean word confidence."""
    return evidence["acoustic_per_frame"] + confidence_weight * evidence["mean_confidence"]


def overlap_verdict(row: Row, wav: np.ndarray, max_overlap_s: float) -> bool:
    """Record the segment's overlapped speech; reject it (True) when there is more than `max_overlap_s`, before it is
    transcribed."""
    row.sample.overlap_s = overlap_seconds(wav, row.analysis_rate)
    if row.sample.overlap_s <= max_overlap_s:
        return False
    row.rejected(
        Stage.TRANSCRIPTION,
        RejectReason.OVERLAPPING_SPEECH,
        f"{row.sample.overlap_s:.2f} s of overlapped speech > max_overlap_s {max_overlap_s:g}",
    )
    return True


class TranscriptionStage(CurationStage):
    """Tags outside the registry are kept or rejected per `cfg.unknown_tags`."""

    name = Stage.TRANSCRIPTION
    empty_audio = RejectReason.BAD_ROW

    def __init__(self, cfg: TranscriptionConfig, on_error="reject"):
        super().__init__(cfg.resources, on_error)
        if cfg.model.name == "pocketsphinx" and base_language(cfg.language) not in (None, "en"):
            raise ValueError(
                f"transcription.language={cfg.language!r}: pocketsphinx transcribes English only; use qwen3-omni (the s2 profile)"
            )
        self.cfg = cfg

    def setup(self) -> None:
        self.transcriber = registry.build("asr", self.cfg.model, "transcription.model")
        self.languages = getattr(self.transcriber, "languages", None)  # None: any language
        self.embedder = None
        if self.cfg.speaker_model is not None:
            self.embedder = registry.build("speaker", self.cfg.speaker_model, "transcription.speaker_model")
            self.diarization = diarization_params(self.cfg.speaker_model)

    def _given_language(self, row: Row) -> tuple[str | None, str]:
        if row.sample.source.language:
            return row.sample.source.language, "manifest"
        if self.cfg.language:
            return self.cfg.language, "config"
        return None, "unknown"

    def process_batch(self, rows: list[Row]) -> list[Row]:
        items: list[_Item] = []
        for row in rows:
            language, source = self._given_language(row)
            if self.languages is not None and language and base_language(language) not in self.languages:
                row.rejected(
                    self.name,
                    RejectReason.LANGUAGE_UNSUPPORTED,
                    f"language {language!r} given by the {source}; {self.transcriber.model_id} transcribes "
                    f"{', '.join(sorted(self.languages))} only",
                )
                continue
            wav = row.analysis_waveform()
            if self.cfg.max_overlap_s is not None and overlap_verdict(row, wav, self.cfg.max_overlap_s):
                continue
            items.append(_Item(row, wav, single_segment(row), language, source))

        # the prompt names a given language, so rows are transcribed in groups of one language (never mixed)
        results: dict[int, TranscriptionResult] = {}
        for language in dict.fromkeys(i.language for i in items):
            group = [i.row for i in items if i.language == language]
            transcribe = lambda waves, rate, lang=language: self.transcriber.transcribe(waves, rate, language=lang)  # noqa: E731
            results.update(
                (id(r), res) for r, res in self.call_model(group, transcribe, RejectReason.TRANSCRIPTION_FAILED)
            )
        kept: list[tuple[_Item, RichTranscript]] = []
        for item in items:
            if id(item.row) not in results:
                continue
            result = results[id(item.row)]
            try:
                out = self._build(item, result)
            except Exception as exc:
                self.fail(item.row, RejectReason.TRANSCRIPTION_FAILED, exc)
                continue
            if not isinstance(out, RichTranscript):
                item.row.rejected(self.name, *out)
                continue
            # the verdicts read the words only, never the turns: voices are embedded for the kept segments alone
            verdict = self._decide_language(item, out, result) or self._check(item, out)
            if verdict:
                item.row.rejected(self.name, *verdict)
                continue
            kept.append((item, out))
        # the kept segments' windows and phrases are embedded in one call
        speaking = [item.row for item, _ in kept if item.speakers]
        embed = lambda waves, rate: embed_voices(waves, rate, self.embedder, self.diarization)  # noqa: E731
        voices = {id(r): v for r, v in self.call_model(speaking, embed, RejectReason.TRANSCRIPTION_FAILED)}
        for item, out in kept:
            if item.speakers and id(item.row) not in voices:
                continue  # its embedding failed: rejected
            try:
                item.row.sample.transcript = (
                    self._with_speakers(item, out, voices[id(item.row)]) if item.speakers else out
                )
            except Exception as exc:
                self.fail(item.row, RejectReason.TRANSCRIPTION_FAILED, exc)
        return rows

    def _with_speakers(self, item: _Item, t: RichTranscript, embedded: tuple[VoicePlan, np.ndarray]) -> RichTranscript:
        """A kept segment's voices on its row (for source-level diarization) and, unless the model wrote its turns,
        its speaker turns from diarization. `embedded`: its entry of `embed_voices`."""
        rate = item.row.analysis_rate
        if item.speakers == "voices":
            plan, emb = embedded
            item.row.speakers = SpeakerEvidence(plan.voices(emb, len(item.wav) / rate)[1], model_turns=True)
            return t
        diar, voices = diarize_segment(item.wav, rate, self.embedder, self.diarization, embedded=embedded)
        item.row.speakers = SpeakerEvidence(voices, item.turn_text)
        turns = speaker_turns(t.words or [], diar, item.turn_text)
        return RichTranscript(turns=turns, language=t.language, words=t.words, model_id=t.model_id)

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
            item.sidecar_used = True
        if self.transcriber.writes_speaker_turns:
            if self.embedder is None:
                return asr
            # its turns stay as written; their voices get source-level ids (SourceSpeakers)
            item.speakers = "voices"
            return asr.model_copy(update={"model_id": f"{asr.model_id}+{self.embedder.model_id}"})

        model_id = asr.model_id
        if side_turns is not None and len({t.speaker for t in side_turns}) > 1:
            return RichTranscript(
                turns=side_turns, language=asr.language, words=asr.words, model_id=model_id + "+sidecar"
            )
        item.turn_text = " ".join(t.text for t in side_turns) if side_turns is not None else None
        if self.embedder is not None:
            item.speakers = "diarize"
            model_id += f"+{self.embedder.model_id}"
        if item.turn_text is not None:
            model_id += "+sidecar"
        diar = [SpeakerTurn(0, 0.0, len(item.wav) / item.row.analysis_rate)]  # one speaker until the segment is kept
        return RichTranscript(
            turns=speaker_turns(asr.words or [], diar, item.turn_text),
            language=asr.language,
            words=asr.words,
            model_id=model_id,
        )

    def _decide_language(self, item: _Item, t: RichTranscript, result: TranscriptionResult) -> Verdict:
        """Set the sample's language and how it was decided, or reject a segment the transcriber cannot vouch for."""
        sample = item.row.sample
        evidence = dict(result.evidence) if result.evidence else None
        if evidence is not None:
            sample.language_evidence = {k: round(v, 4) for k, v in evidence.items()}
        if evidence is not None and self.cfg.language_gate is not None:
            gate = self.cfg.language_gate
            score = gate_score(evidence, gate.confidence_weight)
            oov = None
            if item.sidecar_used and sample.source.text and hasattr(self.transcriber, "oov_rate"):
                oov = evidence["sidecar_oov_rate"] = self.transcriber.oov_rate(strip_tags(sample.source.text))
            sample.language_evidence = {k: round(v, 4) for k, v in {**evidence, "score": score}.items()}
            figures = (
                f"acoustic {evidence['acoustic_per_frame']:.2f}/frame + {gate.confidence_weight:g} x mean word "
                f"confidence {evidence['mean_confidence']:.2f} = {score:.2f} < min_score {gate.min_score:g}"
            )
            if oov is not None and oov > gate.max_sidecar_oov:
                return RejectReason.LANGUAGE_UNSUPPORTED, (
                    f"{oov:.0%} of the sidecar's words are not in the {self.transcriber.model_id} dictionary "
                    f"(max_sidecar_oov {gate.max_sidecar_oov:g}): not {', '.join(sorted(self.languages or ()))}"
                )
            # a sidecar the ASR agrees with vouches for the speech; otherwise the recogniser's evidence must
            if not item.sidecar_used and score < gate.min_score:
                if item.language is None:
                    return RejectReason.LANGUAGE_UNSUPPORTED, (
                        f"{self.transcriber.model_id} cannot vouch for this speech as "
                        f"{', '.join(sorted(self.languages or ()))} (another language, or speech it cannot "
                        f"recognise): {figures}"
                    )
                return (
                    RejectReason.LOW_ASR_CONFIDENCE,
                    f"given as {item.language!r} ({item.language_source}): {figures}",
                )
        if item.language is not None:
            sample.language, sample.language_source = base_language(item.language), item.language_source
        elif t.language:
            sample.language, sample.language_source = base_language(t.language), "model"
        else:
            sample.language, sample.language_source = None, "unknown"
        return None

    def _check(self, item: _Item, t: RichTranscript) -> Verdict:
        expected = self.cfg.language or item.row.sample.source.language
        verdict = (
            check_empty(t)
            or check_repeats(t, self.cfg.max_repeated_ngram)
            or check_language(t, expected, [item.row.sample.source.language, t.language])
            or check_rate(speech_rate(t, item.speech_s))
        )
        if verdict is None and self.cfg.unknown_tags == "reject" and t.unknown_tags:
            verdict = RejectReason.UNKNOWN_TAG, f"tags outside the registry: {', '.join(t.unknown_tags)}"
        return verdict
