"""all-info's exact output format and its errors."""

import zlib

from conftest import build_allexe, run_tool

from allvm.allexe import Allexe


def test_module_table_format(tmp_path, hello_c):
    allexe = build_allexe(tmp_path, "prog", hello_c, "int helper(void) { return 42; }\n")
    proc = run_tool("all-info", allexe)
    assert proc.returncode == 0, proc.stderr
    opened = Allexe.open(str(allexe))
    crcs = [f"{zlib.crc32(opened.read_module(m)):08X}" for m in opened.modules]
    assert proc.stdout == f"Modules:\n\tmain.bc ({crcs[0]})\n\tprog_lib0.bc ({crcs[1]})\n"
    assert all(c == c.upper() and len(c) == 8 for c in crcs)


def test_missing_and_invalid_files(tmp_path):
    proc = run_tool("all-info", tmp_path / "nope.allexe")
    assert proc.returncode == 1
    assert proc.stderr == (f"all-info: Could not open '{tmp_path}/nope.allexe': "
                           "No such file or directory\n")
    empty = tmp_path / "empty.allexe"
    empty.write_bytes(b"")
    proc = run_tool("all-info", empty)
    assert (proc.returncode, proc.stderr) == (
        1, f"all-info: Could not open '{empty}': empty or invalid allexe\n")
