from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.transcript import (
    KNOWN_TAGS,
    RichTranscript,
    TranscriptionResult,
    TranscriptParseError,
    Turn,
    is_known_tag,
    normalize_tag,
    parse_turns,
    render_turns,
    strip_tags,
)

# Words: anything printable without whitespace, brackets or the marker characters.
WORD = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="[]<>|\x85"),
    min_size=1,
    max_size=8,
)
TAG_NAME = st.one_of(
    st.sampled_from(sorted(KNOWN_TAGS)),
    st.from_regex(r"[a-z][a-z0-9'-]{0,6}( [a-z0-9'-]{1,5}){0,2}", fullmatch=True),
).map(normalize_tag)
TOKEN = st.one_of(WORD, TAG_NAME.map(lambda t: f"[{t}]"))
BODY = st.lists(TOKEN, min_size=1, max_size=6).map(" ".join)
TURNS = st.lists(st.builds(Turn, speaker=st.integers(0, 12), text=BODY), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(TURNS)
def test_parse_inverts_render(turns):
    assert parse_turns(render_turns(turns)) == turns


@settings(max_examples=150, deadline=None)
@given(TURNS)
def test_render_inverts_parse_on_canonical_text(turns):
    canonical = render_turns(turns)
    assert render_turns(parse_turns(canonical)) == canonical


@settings(max_examples=100, deadline=None)
@given(TURNS, st.sampled_from([" ", "  ", "\n", "\t "]), st.booleans())
def test_messy_spacing_and_case_parse_to_the_canonical_turns(turns, space, upper):
    def messy(t: Turn) -> str:
        body = t.text.replace(" ", space)
        if upper:
            body = re.sub(r"\[([^\]]*)\]", lambda m: f"[{space}{m.group(1).upper()}{space}]", body)
        return f"<|{space}speaker:{space}{t.speaker}{space}|>{space}{body}{space}"

    assert parse_turns("".join(messy(t) for t in turns)) == turns


def test_tag_normalisation():
    assert normalize_tag(" Laugh ") == "laugh"
    assert normalize_tag("CLEARS   throat") == "clears throat"
    assert normalize_tag("in_a_hurry") == "in a hurry"
    assert normalize_tag("Laughs") == "laugh"  # alias
    assert parse_turns("<|speaker:0|>ok [ Laugh ] fine [In  A Hurry]")[0].text == "ok [laugh] fine [in a hurry]"
    assert is_known_tag("WHISPERING") and not is_known_tag("kazoo")


def test_speaker_index_is_canonicalised():
    assert render_turns(parse_turns("<|speaker:007|>hi")) == "<|speaker:7|>hi"


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("hello", 0, "text before the first speaker marker"),
        ("  hi<|speaker:0|>x", 2, "text before the first speaker marker"),
        ("", 0, "no speaker turn"),
        ("<|speaker:0|>", 13, "empty turn"),
        ("<|speaker:0|>a<|speaker:1|>  ", 27, "empty turn"),
        ("<|speaker:0|>[laugh]<|speakr:1|>x", 20, "malformed speaker marker"),
        ("<|speaker:-1|>x", 0, "malformed speaker marker"),
        ("<|speaker:0|>a [b", 15, "unclosed '['"),
        ("<|speaker:0|>a ] b", 15, "']' without '['"),
        ("<|speaker:0|>a [b [c]]", 18, "nested '['"),
        ("<|speaker:0|>a [] b", 15, "empty tag"),
        ("<|speaker:0|>a [2fast] b", 16, "invalid tag name '2fast'"),
        ("<|speaker:0|>a |> b", 15, "unexpected '|>' inside a turn"),
    ],
)
def test_parse_errors_name_the_position(text, position, reason):
    with pytest.raises(TranscriptParseError) as info:
        parse_turns(text)
    assert info.value.position == position
    assert info.value.reason == reason
    assert f"position {position}" in str(info.value)


def test_implicit_speaker_accepts_plain_text_only_when_asked():
    assert parse_turns("Hello  there [laugh]", implicit_speaker=True) == [Turn(speaker=0, text="Hello there [laugh]")]
    turns = parse_turns("hi <|speaker:1|>yo", implicit_speaker=True)
    assert [(t.speaker, t.text) for t in turns] == [(0, "hi"), (1, "yo")]


def test_turn_validates_its_text():
    assert Turn(speaker=0, text="  a   [SIGH] ").text == "a [sigh]"
    with pytest.raises(ValueError, match="unclosed"):
        Turn(speaker=0, text="a [b")
    with pytest.raises(ValueError, match="'<\\|'"):
        Turn(speaker=0, text="a <|speaker:1|> b")


def test_rich_transcript_views_and_unknown_tags():
    t = RichTranscript.from_inline(
        "<|speaker:0|>So [laugh] I said [kazoo]<|speaker:1|>[whispers] Really?", "m", language="en"
    )
    assert t.render() == "<|speaker:0|>So [laugh] I said [kazoo]<|speaker:1|>[whispers] Really?"
    assert t.plain_text() == "So I said Really?"
    assert t.unknown_tags == ["kazoo"]
    assert t.speakers() == [0, 1]
    assert strip_tags("[laugh] hi [sigh]") == "hi"
    # the derived field is recomputed on load, so a stale value cannot survive a round trip through JSON
    again = RichTranscript.model_validate_json(t.model_dump_json().replace('"kazoo"]', '"x"]'))
    assert again == t


def test_transcription_result_round_trips_through_json():
    ok = TranscriptionResult(transcript=RichTranscript.from_inline("<|speaker:0|>hi", "m"), raw="<|speaker:0|>hi")
    bad = TranscriptionResult(raw="<|speaker:0|>a [b", error="unclosed '[' at position 15")
    for r in (ok, bad):
        assert TranscriptionResult.model_validate_json(r.model_dump_json()) == r
