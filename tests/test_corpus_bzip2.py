"""The corpus end to end on bzip2: Debian's source built with allcc, an allexe per program
by wllvm-extract, and bzip2's own sample tests passing natively and under alley (JIT path
and static path). The other packages run in `make corpus`."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bzip2_end_to_end(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "corpus.run", "bzip2", "--work",
                           str(tmp_path / "work"), "--results", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[bzip2] testing: alley (static path)" in proc.stdout  # progress is shown
    [result] = json.loads((tmp_path / "results.json").read_text())
    assert result["failures"] == []
    assert (result["programs"], result["allexes"], result["ir_share"]) == (2, 2, 1.0)
    for mode in ("native", "jit", "static"):
        assert result["modes"][mode]["passed"] == result["modes"][mode]["total"] == 6, mode
    table = (tmp_path / "results.md").read_text()
    assert "| bzip2 | C | 2 | 2 | 100% | 6/6 | 6/6 | 6/6 | 2 |" in table
