import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.io.ingest import IngestError, list_inputs

EXTS = ["wav", "flac", "mp3"]


def test_directory_listing_is_recursive_sorted_and_finds_sidecars(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    for rel in ["z.wav", "b/a.flac", "b/c/x.mp3", "notes.md", "b/a.lab", "z.txt"]:
        (tmp_path / rel).write_bytes(b"x")
    items = list_inputs(str(tmp_path), EXTS)
    assert [i["uri"].rsplit("/", 1)[1] for i in items] == ["a.flac", "x.mp3", "z.wav"]
    assert items[0]["sidecar_uri"].endswith("b/a.lab") and items[2]["sidecar_uri"].endswith("z.txt")
    assert "sidecar_uri" not in items[1]


def test_manifests_jsonl_and_parquet_resolve_relative_uris(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    rows = [{"uri": "a.wav", "text": "hello", "speaker": "s1"}, {"uri": str(tmp_path / "b.wav"), "language": "en"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    cols = ["uri", "text", "speaker", "language"]
    pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in cols}), tmp_path / "m.parquet")
    for name in ("m.jsonl", "m.parquet"):
        items = list_inputs(str(tmp_path / name), EXTS)
        assert items[0] == {"uri": str(tmp_path / "a.wav"), "text": "hello", "speaker": "s1"}
        assert items[1] == {"uri": str(tmp_path / "b.wav"), "language": "en"}


def test_unusable_inputs_fail_fast(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        list_inputs(str(tmp_path / "nope"), EXTS)
    with pytest.raises(IngestError, match="no inputs"):
        list_inputs(str(tmp_path), EXTS)
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav"}\n')
    with pytest.raises(IngestError, match="uri"):
        list_inputs(str(tmp_path / "m.jsonl"), EXTS)
