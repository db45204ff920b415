"""The corpus list end to end on zlib: `allvm-debian build -list corpus/packages.toml zlib`
builds Debian's zlib (which ships no program), makes allexes of the build tree's example and
minigzip (the list's [zlib.tree]), runs the list's test command (`make test`) and its command
cases natively and on alley's two paths, and corpus/results.md counts both programs passing.
The other packages run in `make corpus`."""

import json

from conftest import run_tool

from allvm.packaging.debian_list import load_list
from corpus.results import LIST, write_results


def test_zlib_through_the_list(tmp_path):
    out = tmp_path / "out"
    proc = run_tool("allvm-debian", "build", "-list", LIST, "-o", out, "zlib", timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert "[zlib] testing: static" in proc.stdout  # progress is shown
    r = json.loads((out / "zlib" / "report.json").read_text())
    assert r["error"] is None and r["executables"] == r["allexes"] == 2
    assert {(p["name"], p["path"]) for p in r["programs"]} == {
        ("example", "(build tree) example"), ("minigzip", "(build tree) minigzip")}
    assert all(p["ir_share"] == 1.0 for p in r["programs"])
    assert r["test_command"] == "bash -c make test"
    for mode in ("native", "jit", "static"):
        assert (r["tests"][mode]["passed"], r["tests"][mode]["failed"]) == (3, 0), mode
    assert set(r["tested_in_tree"].values()) == {"example", "minigzip"}
    [row] = write_results(out, {"zlib": load_list(LIST)["zlib"]}, tmp_path)
    assert (row["executables"], row["passing"]) == (2, 2)
    table = (tmp_path / "results.md").read_text()
    assert "| zlib | C | 2 | 2 | 100% | 3/3 | 3/3 | 3/3 | 2 |" in table
