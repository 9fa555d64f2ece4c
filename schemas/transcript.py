"""Rich transcripts: ordered speaker turns whose text carries inline vocal-event tags.

The inline format, one string per utterance:

    <|speaker:0|>So I told him [laugh] no way.<|speaker:1|>[whispers] Really?

Grammar (strict; anything else raises `TranscriptParseError` with the offending position):

    transcript := turn+
    turn       := '<|speaker:' digits '|>' body        body: at least one word or tag
    tag        := '[' name ']'                          name: a letter, then letters/digits/' -_
    word       := text without whitespace, '[', ']', '<|' or '|>'

Canonical form, the one `render_turns` writes and `parse_turns` returns: speaker index without leading
zeros, no space after the marker, a body with single spaces and no outer whitespace, tag names
normalised (lower case, single inner spaces, underscores as spaces, known aliases mapped:
'[ Laughs ]' -> '[laugh]'). `render_turns(parse_turns(s)) == s` for every canonical `s`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Non-verbal sounds that occupy time on their own.
EVENT_TAGS = frozenset(
    {
        "laugh",
        "chuckle",
        "giggle",
        "inhale",
        "exhale",
        "sigh",
        "cough",
        "breath",
        "clears throat",
        "sniff",
        "gasp",
        "yawn",
        "sob",
        "crying",
        "lip smack",
        "hum",
        "groan",
        "pause",
        "noise",
        "music",
    }
)
# Delivery styles that colour the words after them.
STYLE_TAGS = frozenset(
    {
        "whispers",
        "emphasis",
        "in a hurry",
        "shouting",
        "sad",
        "excited",
        "angry",
        "happy",
        "calm",
        "slow",
        "fast",
        "sarcastic",
        "surprised",
        "scared",
        "singing",
        "laughing",
        "crying voice",
        "tired",
        "nervous",
        "serious",
        "low voice",
        "high pitch",
    }
)
KNOWN_TAGS = EVENT_TAGS | STYLE_TAGS
# Spellings models and annotators commonly use for the same tag.
TAG_ALIASES = {
    "laughs": "laugh",
    "laughter": "laugh",
    "chuckles": "chuckle",
    "giggles": "giggle",
    "inhales": "inhale",
    "exhales": "exhale",
    "sighs": "sigh",
    "coughs": "cough",
    "coughing": "cough",
    "breathes": "breath",
    "breathing": "breath",
    "clearing throat": "clears throat",
    "throat clearing": "clears throat",
    "clear throat": "clears throat",
    "sniffs": "sniff",
    "gasps": "gasp",
    "yawns": "yawn",
    "sobs": "sob",
    "sobbing": "sob",
    "whisper": "whispers",
    "whispering": "whispers",
    "shout": "shouting",
    "shouts": "shouting",
    "yelling": "shouting",
    "emphasized": "emphasis",
    "emphatic": "emphasis",
    "hurried": "in a hurry",
    "hurriedly": "in a hurry",
}

_MARKER = re.compile(r"<\|\s*speaker\s*:\s*(\d+)\s*\|>")
_TAG_NAME = re.compile(r"[a-z][a-z0-9' -]*")
_TAG = re.compile(r"\[([^\[\]]*)\]")


class TranscriptParseError(ValueError):
    """The text does not follow the transcript grammar; `position` is the 0-based offset of the problem."""

    def __init__(self, message: str, text: str, position: int):
        self.reason = message
        self.text = text
        self.position = position
        lo = max(0, position - 20)
        super().__init__(f"{message} at position {position}: ...{text[lo : position + 20]!r}")


def normalize_tag(name: str) -> str:
    """Canonical tag name: lower case, underscores as spaces, single inner spaces, aliases mapped."""
    name = " ".join(name.replace("_", " ").lower().split())
    return TAG_ALIASES.get(name, name)


def is_known_tag(name: str) -> bool:
    return normalize_tag(name) in KNOWN_TAGS


def _canonical_body(text: str, offset: int = 0, full: str | None = None) -> str:
    """Validate and normalise one turn body; error positions are reported relative to `full`."""
    full = text if full is None else full
    for bad in ("<|", "|>"):
        if (k := text.find(bad)) >= 0:
            raise TranscriptParseError(f"unexpected {bad!r} inside a turn", full, offset + k)
    out: list[str] = []
    pos = 0
    while pos < len(text):
        opened, closed = text.find("[", pos), text.find("]", pos)
        if opened < 0 and closed < 0:
            out.append(text[pos:])
            break
        if opened < 0 or 0 <= closed < opened:
            raise TranscriptParseError("']' without '['", full, offset + closed)
        m = _TAG.match(text, opened)
        if m is None:
            nxt = text.find("[", opened + 1)
            if 0 <= nxt and (closed < 0 or nxt < closed):
                raise TranscriptParseError("nested '['", full, offset + nxt)
            raise TranscriptParseError("unclosed '['", full, offset + opened)
        name = normalize_tag(m.group(1))
        if not name:
            raise TranscriptParseError("empty tag", full, offset + opened)
        if not _TAG_NAME.fullmatch(name):
            raise TranscriptParseError(f"invalid tag name {m.group(1)!r}", full, offset + opened + 1)
        out.append(text[pos:opened])
        out.append(f"[{name}]")
        pos = m.end()
    body = " ".join("".join(out).split())
    if not body:
        raise TranscriptParseError("empty turn", full, offset)
    return body


class WordConfidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    word: str
    confidence: float = Field(ge=0.0, le=1.0)
    start_s: float | None = None
    end_s: float | None = None


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: int = Field(ge=0, description="Index within the utterance, rendered as <|speaker:i|>.")
    source_speaker: int | None = Field(
        default=None,
        ge=0,
        description="Speaker id shared by all samples of the same source (source-level diarization): the same voice has "
        "the same id in every segment of a recording. None where no speaker embedder ran. Not part of the inline text.",
    )
    text: str = Field(description="Text with inline tags such as [laugh] or [whispers], in canonical form.")
    start_s: float | None = Field(
        default=None, description="Turn start within the utterance, where known (not part of the inline text)."
    )
    end_s: float | None = Field(
        default=None, description="Turn end within the utterance, where known (not part of the inline text)."
    )

    @field_validator("text")
    @classmethod
    def _canonical(cls, v: str) -> str:
        return _canonical_body(v)


def parse_turns(text: str, *, implicit_speaker: bool = False) -> list[Turn]:
    """Inline text -> canonical turns. `implicit_speaker` lets text before the first marker be speaker 0
    (models often omit the marker for a single speaker); otherwise that is an error."""
    turns: list[Turn] = []
    starts = [m.start() for m in re.finditer(re.escape("<|"), text)]
    first = starts[0] if starts else len(text)
    if text[:first].strip():
        if not implicit_speaker:
            lead = len(text[:first]) - len(text[:first].lstrip())
            raise TranscriptParseError("text before the first speaker marker", text, lead)
        turns.append(Turn(speaker=0, text=_canonical_body(text[:first], 0, text)))
    elif not starts:
        raise TranscriptParseError("no speaker turn", text, 0)
    for k, at in enumerate(starts):
        m = _MARKER.match(text, at)
        if m is None:
            raise TranscriptParseError("malformed speaker marker", text, at)
        end = starts[k + 1] if k + 1 < len(starts) else len(text)
        if m.end() > end:  # a marker overlapping the next '<|', e.g. '<|speaker:<|'
            raise TranscriptParseError("malformed speaker marker", text, at)
        turns.append(Turn(speaker=int(m.group(1)), text=_canonical_body(text[m.end() : end], m.end(), text)))
    return turns


def render_turns(turns: list[Turn]) -> str:
    if not turns:
        raise ValueError("a transcript needs at least one turn")
    return "".join(f"<|speaker:{t.speaker}|>{t.text}" for t in turns)


def strip_tags(text: str) -> str:
    """Turn body without tags, single-spaced: the words a listener would write down."""
    return " ".join(_TAG.sub(" ", text).split())


def tags_in(text: str) -> list[str]:
    return [m.group(1) for m in _TAG.finditer(text)]


class RichTranscript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turns: list[Turn] = Field(min_length=1)
    language: str | None = None
    words: list[WordConfidence] | None = Field(default=None, description="Word confidences where the model gives them.")
    model_id: str
    unknown_tags: list[str] = Field(
        default_factory=list,
        description="Tags outside the registry (KNOWN_TAGS), in order of appearance; derived from the turns.",
    )

    @model_validator(mode="after")
    def _derive_unknown_tags(self) -> RichTranscript:
        self.unknown_tags = list(
            dict.fromkeys(t for turn in self.turns for t in tags_in(turn.text) if t not in KNOWN_TAGS)
        )
        return self

    @classmethod
    def from_inline(cls, text: str, model_id: str, *, implicit_speaker: bool = False, **fields) -> RichTranscript:
        return cls(turns=parse_turns(text, implicit_speaker=implicit_speaker), model_id=model_id, **fields)

    def render(self) -> str:
        """The inline form, e.g. '<|speaker:0|>hello [laugh]<|speaker:1|>hi'."""
        return render_turns(self.turns)

    def plain_text(self) -> str:
        """Words only, without speaker markers or tags: what WER is computed on."""
        return " ".join(p for t in self.turns if (p := strip_tags(t.text)))

    def tagged_text(self) -> str:
        """Words and inline tags, without speaker markers."""
        return " ".join(t.text for t in self.turns)

    def tags(self) -> list[str]:
        """Inline tags ([laugh], [whispers], ...) in order of appearance, canonical names."""
        return [tag for t in self.turns for tag in tags_in(t.text)]

    def speakers(self) -> list[int]:
        return sorted({t.speaker for t in self.turns})


class TranscriptionResult(BaseModel):
    """One transcriber output: the parsed transcript, or the raw text and why it could not be parsed."""

    model_config = ConfigDict(extra="forbid")

    transcript: RichTranscript | None = None
    raw: str = Field(description="The model's text as produced, before parsing.")
    error: str | None = Field(
        default=None, description="Why `raw` was not accepted (parse error with position, empty output)."
    )
    evidence: dict[str, float] | None = Field(
        default=None,
        description="The recogniser's own figures on how well the audio fits what it knows (pocketsphinx: "
        "mean_confidence, acoustic_per_frame, frames), for the language gate.",
    )
