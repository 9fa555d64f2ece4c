import json
import re
from pathlib import Path

from jobs.cli import main
from schemas.rejects import REASON_DOCS, RejectReason, Stage
from schemas.sample import Reject

ROOT = Path(__file__).resolve().parents[2]


def test_every_reason_has_a_doc_and_the_codes_are_stable_strings():
    assert set(REASON_DOCS) == set(RejectReason) and all(REASON_DOCS[r].strip() for r in RejectReason)
    assert all(r == r.value and re.fullmatch(r"[a-z_]+", r.value) for r in RejectReason)
    assert len({r.value for r in RejectReason}) == len(RejectReason)
    assert [s.value for s in Stage] == [
        "decode",
        "separation",
        "segmentation",
        "quality",
        "transcription",
        "codec",
        "encode",
    ]


def test_schema_reject_lists_every_reason_with_its_meaning(capsys):
    assert main(["schema", "reject"]) == 0
    out = capsys.readouterr().out
    schema = json.loads(out)
    reasons = schema["$defs"]["RejectReason"]
    assert reasons["enum"] == [r.value for r in RejectReason]
    assert schema["$defs"]["Stage"]["enum"] == [s.value for s in Stage]
    for r in RejectReason:
        assert f"- {r.value}: {REASON_DOCS[r]}" in reasons["description"], r


def test_reject_records_are_typed_and_read_back_from_their_strings():
    r = Reject(input="/a.wav", stage="decode", reason="too_short")
    assert r.stage is Stage.DECODE and r.reason is RejectReason.TOO_SHORT
    assert r.model_dump(mode="json")["reason"] == "too_short" and Reject.model_validate_json(r.model_dump_json()) == r


def test_every_decode_error_code_in_the_code_is_a_reject_reason():
    """DecodeStage turns DecodeError.reason into a RejectReason: a code outside the enum would fail there."""
    codes = set()
    for path in [*(ROOT / "curation" / "io").glob("*.py"), *(ROOT / "curation" / "stages").glob("*.py")]:
        codes |= set(re.findall(r'DecodeError\(\s*"([a-z_]+)"', path.read_text()))
    assert codes >= {
        "too_short",
        "empty_audio",
        "non_finite_samples",
        "too_long",
        "decode_failed",
        "unreadable_container",
        "no_audio_stream",
    }
    assert codes <= {r.value for r in RejectReason}
