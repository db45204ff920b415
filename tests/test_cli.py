"""What every tool shares: --help, --version, single- and double-dash options, error lines."""

import tomllib
from pathlib import Path

import pytest
from conftest import run_tool

from allvm.cli import Tool
from allvm.errors import AllvmError

ROOT = Path(__file__).resolve().parent.parent
_PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TOOLS = sorted([*_PROJECT["project"]["scripts"],
                *(Path(p).name for p in _PROJECT["tool"]["setuptools"]["script-files"])])


@pytest.mark.parametrize("name", TOOLS)
@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version(name, flag):
    proc = run_tool(name, flag)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("ALLVM Tools" in line and "0.1.0" in line for line in lines)
    assert any(line.strip().startswith("LLVM version 22.1.") for line in lines)


@pytest.mark.parametrize("name", TOOLS)
def test_help(name):
    proc = run_tool(name, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: {name}")
    assert run_tool(name, "-help").stdout == proc.stdout


# The compiler wrappers hand every other option to clang, as a drop-in CC must.
COMPILER_WRAPPERS = {"allcc", "allc++"}


@pytest.mark.parametrize("name", sorted(set(TOOLS) - COMPILER_WRAPPERS))
def test_unknown_option_is_one_line(name):
    proc = run_tool(name, "-no-such-option", "x")
    assert proc.returncode != 0
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(f"{name}: ")


def test_single_and_double_dash_spellings(tmp_path):
    ll = tmp_path / "m.ll"
    ll.write_text("define i32 @main() {\n  ret i32 0\n}\n")
    assert run_tool("bc2allvm", ll, "-o", tmp_path / "a.allexe").returncode == 0
    assert run_tool("bc2allvm", ll, "-o", tmp_path / "a.allexe", "-f").returncode == 0
    assert run_tool("bc2allvm", ll, "-o", tmp_path / "a.allexe", "-f",
                    "--preserve-asm").returncode == 0


def test_errors_and_interrupts_map_to_exit_codes(capsys):
    tool = Tool("demo-tool", "test")

    def fail(args):
        raise AllvmError("it went wrong")

    def interrupt(args):
        raise KeyboardInterrupt

    def bug(args):
        raise ZeroDivisionError("oops")

    assert tool.run(fail, []) == 1
    assert capsys.readouterr().err == "demo-tool: it went wrong\n"
    assert tool.run(interrupt, []) == 130
    assert capsys.readouterr().err == ""
    assert tool.run(bug, []) == 1
    err = capsys.readouterr().err
    assert err.startswith("demo-tool: internal error: ZeroDivisionError") and "Traceback" not in err

    def no_memory(args):
        raise MemoryError

    assert tool.run(no_memory, []) == 1
    assert capsys.readouterr().err == "demo-tool: out of memory\n"
