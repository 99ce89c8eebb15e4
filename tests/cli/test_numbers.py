"""Every number on the command line is checked like a config key: one line, exit 2, nothing written."""

from __future__ import annotations

import pytest

BAD_NUMBERS = [
    (("run", "{study}", "--n-trials", "-3"), "--n-trials: must be at least 1; got -3"),
    (("run", "{study}", "--n-trials", "0"), "--n-trials: must be at least 1; got 0"),
    (("run", "{study}", "--timeout", "-5"), "--timeout: must be more than 0; got -5"),
    (("worker", "{study}", "--timeout", "0"), "--timeout: must be more than 0; got 0"),
    (("launch", "{study}", "--workers", "0"), "--workers: must be at least 1; got 0"),
    (("launch", "{study}", "--gpus", "0", "--per-gpu", "0"), "--per-gpu: must be at least 1; got 0"),
    (("launch", "{study}", "--workers", "2", "--timeout", "-1"), "--timeout: must be more than 0; got -1"),
    (("best", "{study}", "--top-k", "0"), "--top-k: must be at least 1; got 0"),
    (("export", "{study}", "--top-k", "0", "-o", "x.yaml"), "--top-k: must be at least 1; got 0"),
    (("train", "x.yaml", "-o", "out", "--rank", "0"), "--rank: must be at least 1; got 0"),
    (("dashboard", "{study}", "--port", "70000"), "--port: must be between 0 and 65535; got 70000"),
    (("dashboard", "{study}", "--port", "-1"), "--port: must be between 0 and 65535; got -1"),
    (("proxy", "{study}", "--port", "65536"), "--port: must be between 0 and 65535; got 65536"),
    (("proxy", "{study}", "--threads", "0"), "--threads: must be at least 1; got 0"),
    (("rank", "{study}", "--rows", "1"), "--rows: must be at least 2; got 1"),
    (("cleanup", "{study}", "--older-than", "-1"), "--older-than: must be at least 0; got -1"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_NUMBERS, ids=[" ".join(a[:1] + a[2:]) for a, _ in BAD_NUMBERS])
def test_bad_numbers_are_one_line_and_write_nothing(make_study, run_cli, tmp_path, argv, message):
    study = make_study()
    code, out, err = run_cli(*[str(study) if a == "{study}" else a for a in argv])
    assert code == 2, (out, err)
    assert err.strip() == f"tuneflow: error: {message}"
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / "out").exists()
