"""Broken and hostile input through every tool and mode: one line, non-zero, nothing written.

The inputs come from `badinputs.generate` (made here, not committed). Each run has a 10 s
timeout and a 2 GiB address-space limit, so a tool that inflated a bomb or looped would fail.
"""

import os
import resource
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest
from badinputs import ALLEXE_CASES, IR_CASES, generate, odd_names, raw_zip
from conftest import compile_c, run_tool, tool_path

from allvm.allexe import Allexe
from allvm.errors import AllvmError

MEMORY_LIMIT = 2 << 30
TIME_LIMIT = 10
# Root reads any file: the unreadable case runs without the capabilities that allow that.
WITHOUT_DAC_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
# Sound containers with bad modules inside: all-info lists them (like `unzip -l`) without
# reading any bitcode; -imports reads it, and an aarch64 module has imports like any other.
CONTENT_CASES = {"main_not_bitcode", "main_truncated", "main_empty", "no_main", "main_global",
                 "aarch64", "aarch64_library", "lying_bomb"}
# allopt runs a pipeline over any module's IR: it does not insist on a `main` in main.bc.
NO_MAIN_CASES = {"main_empty", "no_main", "main_global"}
ACCEPTED = {"all-info": CONTENT_CASES, "all-info-imports": {"aarch64", "aarch64_library"},
            "allopt": NO_MAIN_CASES}

# Tool and mode → its command line for an input and an output path.
ALLEXE_TOOLS = {
    "alley": lambda src, out: ["alley", src],
    "alley-force-static": lambda src, out: ["alley", "-force-static", src],
    "alley-noexec": lambda src, out: ["alley", "-noexec", src],
    "all-info": lambda src, out: ["all-info", src],
    "all-info-imports": lambda src, out: ["all-info", "-imports", "-json", src],
    "allready": lambda src, out: ["allready", src],
}
# Tools written by others at the same time: covered when installed.
OPTIONAL_TOOLS = {
    "alltogether": lambda src, out: ["alltogether", src, "-o", out],
    "allopt": lambda src, out: ["allopt", "-i", src, "-o", out, "-passes=default<O1>"],
    "allmux": lambda src, out: ["allmux", src, "-o", out],
}
ALLEXE_TOOLS.update({name: cmd for name, cmd in OPTIONAL_TOOLS.items()
                     if os.access(tool_path(name), os.X_OK)})


@pytest.fixture(scope="session")
def bitcode(tmp_path_factory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("bitcode")
    sources = {
        "main": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
        "lib": "int lib_answer(void) { return 42; }\n",
        "lib2": "int lib_other(void) { return 7; }\n",
        "main_global": "int main = 42;\n",
    }
    out = {name: compile_c(src, d / f"{name}.bc").read_bytes() for name, src in sources.items()}
    for name, source in (("aarch64", "main"), ("aarch64_lib", "lib")):
        out[name] = compile_c(sources[source], d / f"{name}.bc",
                              target="aarch64-linux-musl").read_bytes()
    return out


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory, bitcode) -> dict[str, Path]:
    # World-traversable, so the unreadable case can be run as an unprivileged user.
    directory = Path(tempfile.mkdtemp(prefix="allvm-bad-"))
    directory.chmod(0o755)
    yield generate(directory, bitcode)
    shutil.rmtree(directory, ignore_errors=True)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_bounded(argv: list[str], *, unprivileged: bool = False):
    prefix = WITHOUT_DAC_OVERRIDE if unprivileged and os.geteuid() == 0 else []
    return subprocess.run([*prefix, tool_path(argv[0]), *map(str, argv[1:])],
                          capture_output=True, text=True, timeout=TIME_LIMIT,
                          preexec_fn=_limit_memory)


def cache_entries(cache: Path) -> list[str]:
    return [str(p) for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def assert_one_line_failure(proc, tool: str) -> None:
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{tool}: "), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr


def _check_case(argv, case, tmp_path, isolated_cache) -> None:
    proc = run_bounded(argv, unprivileged=case == "unreadable")
    assert_one_line_failure(proc, argv[0])
    assert not (tmp_path / "out.allexe").exists()
    assert cache_entries(isolated_cache) == []


@pytest.mark.parametrize("case", ALLEXE_CASES)
@pytest.mark.parametrize("tool", ALLEXE_TOOLS)
def test_bad_allexe(tool, case, bad_inputs, tmp_path, isolated_cache):
    argv = ALLEXE_TOOLS[tool](bad_inputs[case], tmp_path / "out.allexe")
    if case in ACCEPTED.get(tool, ()):
        proc = run_bounded(argv)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    else:
        _check_case(argv, case, tmp_path, isolated_cache)


@pytest.mark.parametrize("case", IR_CASES)
def test_bad_ir_for_bc2allvm(case, bad_inputs, tmp_path, isolated_cache):
    argv = ["bc2allvm", bad_inputs[case], "-o", tmp_path / "out.allexe"]
    _check_case(argv, case, tmp_path, isolated_cache)


def test_messages_name_the_problem(bad_inputs):
    """A few cases, by their exact words."""
    expected = {
        "empty": "empty or invalid allexe",
        "main_not_first": "First entry was 'lib.bc', expected 'main.bc'",
        "bomb": "would inflate to",
        "lying_bomb": "corrupt",
        "duplicate_names": "duplicate module name 'lib.bc'",
        "many_entries": "more than the limit of",
        "encrypted": "is encrypted",
        "fifo": "not a regular file",
        "symlink_loop": "Too many levels of symbolic links",
        "no_main": "Failed to find 'main' function",
        "main_global": "Failed to find 'main' function",
        "aarch64": "main.bc: target 'aarch64-",
        "aarch64_library": "lib.bc: target 'aarch64-",
    }
    for case, words in expected.items():
        proc = run_bounded(["alley", "-noexec", bad_inputs[case]])
        assert words in proc.stderr, (case, proc.stderr)


def test_tools_refuse_what_bc2allvm_refuses(bad_inputs, tmp_path):
    """The words of bc2allvm (and alley) for a main.bc without `main`; the module and its
    triple for another architecture, before anything is compiled."""
    out = tmp_path / "out.allexe"
    tools = {"alltogether": ["-o", out, "-disable-opt"], "allmux": ["-o", out], "allready": []}
    no_main = "Failed to find 'main' function in main.bc!"
    words = {"main_empty": no_main, "no_main": no_main, "main_global": no_main,
             "aarch64": "main.bc: target 'aarch64-unknown-linux",
             "aarch64_library": "lib.bc: target 'aarch64-unknown-linux"}
    for case, expected in words.items():
        for tool, options in tools.items():
            if tool == "allmux" and expected == no_main:  # allmux's own words
                wanted = f"{bad_inputs[case]}: 'main.bc' does not define 'main'"
            else:
                wanted = expected
            proc = run_bounded([tool, bad_inputs[case], *options])
            assert wanted in proc.stderr, (tool, case, proc.stderr)


def test_unreadable_message(bad_inputs):
    proc = run_bounded(["all-info", bad_inputs["unreadable"]], unprivileged=True)
    assert proc.stderr.endswith("Permission denied\n"), proc.stderr


def test_size_limit_is_configurable(tmp_path, bitcode):
    path = tmp_path / "small.allexe"
    path.write_bytes(raw_zip([("main.bc", bitcode["main"])]))
    env = dict(os.environ, ALLVM_SIZE_LIMIT="1000")
    proc = run_tool("all-info", path, env=env)
    assert proc.returncode == 1
    assert "more than the limit of 1000" in proc.stderr
    assert run_tool("all-info", path).returncode == 0


def test_bomb_is_refused_without_inflating(bad_inputs):
    """The refusal comes from the zip directory alone: well under the bomb's inflated size."""
    allexe_path = str(bad_inputs["bomb"])
    with pytest.raises(AllvmError, match="would inflate"):
        Allexe.open(allexe_path)


def test_lying_sizes_inflate_at_most_the_declared_size(bad_inputs, monkeypatch):
    calls = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *a):
            self.d = real(*a)

        def decompress(self, data, max_length=0):
            out = self.d.decompress(data, max_length)
            calls.append((max_length, len(out)))
            return out

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    allexe = Allexe.open(str(bad_inputs["lying_bomb"]))
    with pytest.raises(AllvmError, match="corrupt"):
        allexe.read_module(allexe.main)
    assert calls and all(0 < produced <= limit for limit, produced in calls)
    assert max(p for _, p in calls) <= allexe.main.size + 1


def test_path_like_names_are_only_names(tmp_path, bitcode, isolated_cache):
    """`..` and absolute module names run normally and never become file system paths."""
    path = tmp_path / "odd.allexe"
    path.write_bytes(odd_names(bitcode))
    for leftover in ("/tmp/allvm-escape.bc", "/tmp/allvm-absolute.bc"):
        assert not os.path.exists(leftover)
    info = run_tool("all-info", path)
    assert "../../../../tmp/allvm-escape.bc" in info.stdout
    proc = run_tool("alley", path)
    assert (proc.returncode, proc.stdout) == (0, "hello\n"), proc.stderr
    assert run_tool("allready", path).returncode == 0
    for leftover in ("/tmp/allvm-escape.bc", "/tmp/allvm-absolute.bc", "/tmp/allvm-escape",
                     "/tmp/allvm-absolute"):
        assert not os.path.exists(leftover)
    for entry in cache_entries(isolated_cache):
        assert Path(entry).resolve().is_relative_to(isolated_cache.resolve())


# Found by fuzzing (fuzz/fuzz_allexe.py): a first entry named with a newline made the
# "First entry was ..." message two lines (and could write terminal escapes).
def test_control_characters_in_a_name_are_refused_in_one_line(tmp_path, bitcode):
    path = tmp_path / "nl.allexe"
    path.write_bytes(raw_zip([("main.bc\nPK\x1b[2J", bitcode["main"])]))
    proc = run_tool("all-info", path)
    assert proc.returncode == 1
    assert proc.stderr == (f"all-info: Could not open '{path}': module name "
                           "'main.bc\\nPK\\x1b[2J' has control characters\n")


# Found by reading the reader while fuzzing: a local header offset past the end of the file
# made struct.unpack_from fail (an internal error) instead of a clear message.
def test_entry_offset_past_the_end(tmp_path, bitcode):
    data = bytearray(raw_zip([("main.bc", bitcode["main"])]))
    central = data.rfind(b"PK\x01\x02")
    data[central + 42 : central + 46] = (len(data) + 1000).to_bytes(4, "little")
    path = tmp_path / "offset.allexe"
    path.write_bytes(bytes(data))
    proc = run_tool("alley", "-noexec", path)
    assert proc.returncode == 1
    assert proc.stderr == f"alley: {path}: entry 'main.bc' is truncated\n"


def test_fuzz_smoke(tmp_path):
    """CI's short fuzzing run: the harness must finish its time without a finding."""
    seconds = os.environ.get("ALLVM_FUZZ_SECONDS", "30")
    proc = subprocess.run([tool_path("python"), str(Path(__file__).parent.parent / "fuzz" /
                                                    "fuzz_allexe.py"),
                           str(tmp_path / "corpus"), f"-max_total_time={seconds}",
                           f"-artifact_prefix={tmp_path}/"],
                          capture_output=True, text=True, timeout=int(seconds) + 120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done " in proc.stderr
    assert not list(tmp_path.glob("crash-*"))


def test_another_architecture_is_refused_before_compiling(bad_inputs, monkeypatch):
    """The library's triple is read from its bitcode: main.bc is not compiled either."""
    from allvm import parallel
    from allvm.cache import Cache
    from allvm.native.build import build_static_binary

    compiled = []
    monkeypatch.setattr(parallel, "in_parallel", lambda function, jobs: compiled.extend(jobs))
    with pytest.raises(AllvmError, match="^lib.bc: target 'aarch64-unknown-linux"):
        build_static_binary(Allexe.open(str(bad_inputs["aarch64_library"])), Cache())
    assert compiled == []
