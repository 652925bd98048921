"""Every CLI reports bad input as one `error:` line with exit status 2 (motiongpt.utils.cli)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from motiongpt.utils.cli import run_cli

REPO = Path(__file__).resolve().parents[2]


def test_run_cli_turns_user_errors_into_one_line(capsys, monkeypatch):
    def bad(argv):
        raise FileNotFoundError("data/train.json not found\n(data_dir must hold the records)")

    assert run_cli(bad) == 2
    assert capsys.readouterr().err == "error: data/train.json not found (data_dir must hold the records)\n"
    assert run_cli(lambda argv: 3) == 3 and run_cli(lambda argv: Path("x")) == 0 and run_cli(lambda argv: None) == 0
    # a bug is not bad input: its traceback stays
    with pytest.raises(KeyError):
        run_cli(lambda argv: {}["missing"])
    # and the traceback of a user error on request
    monkeypatch.setenv("MOTIONGPT_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        run_cli(bad)


def test_prepare_motion_on_a_malformed_train_json(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.json").write_text('[{"instruction": "x", "input": "", "output": ')  # cut short
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "prepare_motion.py"), "--data_dir", str(data),
                           "--out_dir", str(tmp_path / "out"), "--base_model", "nano", "--format", "digits"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(data / "train.json") in last and "JSON" in last
    assert not (tmp_path / "out").exists()
    # a well-formed file with a bad record names the record
    (data / "train.json").write_text(json.dumps([{"instruction": "x", "input": ""}]))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "prepare_motion.py"), "--data_dir", str(data),
                           "--out_dir", str(tmp_path / "out"), "--base_model", "nano", "--format", "digits"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 2 and "record 0" in proc.stderr.strip().splitlines()[-1]
