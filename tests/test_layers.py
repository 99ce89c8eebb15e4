"""The layer rule holds: imports only point down (import-linter's contract and the shared cycle check)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO

SRC = REPO / "src" / "tuneflow"


def test_import_linter_contract_is_kept():
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_no_import_cycles_and_few_flat_modules():
    tool = REPO.parent / "shared" / "tools" / "import_graph.py"
    if not tool.is_file():
        pytest.skip("../shared/tools/import_graph.py is not beside this checkout")
    last = subprocess.run([sys.executable, str(tool), "src", "tuneflow"], cwd=REPO, capture_output=True, text=True).stdout.splitlines()[-1]
    fields = dict(part.split("=", 1) for part in last.split()[:3])
    assert fields["cycles"] == "0", last
    assert int(fields["flat"]) <= 6, last


def test_no_module_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long
