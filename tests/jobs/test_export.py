"""`s2 export`: a folder that is not a checkpoint is said in one line, and nothing is written."""

from __future__ import annotations

from jobs.cli import main as s2


def test_a_folder_without_a_checkpoint_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert s2(["export", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"cannot export: checkpoint {tmp_path}/run/state.pt is unreadable: FileNotFoundError")
    assert not (tmp_path / "model").exists()
