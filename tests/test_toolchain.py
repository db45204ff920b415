"""The executable linker: zig's lld called directly with the command `zig cc -###` printed when
it linked first, recorded per flags, recorded again when missing, corrupt or stale; nothing but
the output is written (`-###` links too)."""

import json
import os
import subprocess

import pytest
from conftest import compile_c

from allvm import toolchain
from allvm.platform import Needs, link_flags
from allvm.platform import link_executable as link_needs
from allvm.toolchain import link_record_path

MUSL = "x86_64-unknown-linux-musl"
GNU = "x86_64-unknown-linux-gnu"


@pytest.fixture
def zig_calls(monkeypatch):
    """The zig subcommands the linker runs (`cc-###` for a recording), in order."""
    calls = []
    real = toolchain.run_zig

    def spy(subcommand, args, what, **kwargs):
        calls.append(subcommand + ("-###" if "-###" in args else ""))
        return real(subcommand, args, what, **kwargs)

    monkeypatch.setattr(toolchain, "run_zig", spy)
    return calls


def link_executable(objects, triple, output):
    link_needs(objects, Needs(triple), output)


def hello_object(directory, target):
    return compile_c('#include <stdio.h>\nint main(void) { puts("linked"); return 3; }\n',
                     directory / "hello.o", target=target.replace("-unknown", ""), emit="-g0")


def forget_record(triple):
    try:
        os.unlink(link_record_path(link_flags(Needs(triple))))
    except FileNotFoundError:
        pass


def linked_program_runs(path):
    proc = subprocess.run([str(path)], capture_output=True, text=True)
    return proc.stdout == "linked\n" and proc.returncode == 3


@pytest.mark.parametrize("triple", [MUSL, GNU])
def test_recorded_once_then_lld_directly(tmp_path, zig_calls, triple):
    obj = hello_object(tmp_path, triple)
    forget_record(triple)
    link_executable([str(obj)], triple, str(tmp_path / "first"))
    assert zig_calls == ["cc-###"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["first", "hello.c",
                                                                          "hello.o"]
    assert not os.path.exists("/{output}")  # the placeholder is never an output
    assert os.path.exists(link_record_path(link_flags(Needs(triple))))
    link_executable([str(obj)], triple, str(tmp_path / "second"))
    assert zig_calls == ["cc-###", "ld.lld"]
    assert linked_program_runs(tmp_path / "first") and linked_program_runs(tmp_path / "second")


@pytest.mark.parametrize("record", ["not json", json.dumps(["/gone/crt1.o", "{objects}"]),
                                    json.dumps(["o/1234/crt1.o", "{objects}"])])
def test_corrupt_or_stale_record_is_recorded_again(tmp_path, zig_calls, record):
    obj = hello_object(tmp_path, MUSL)
    with open(link_record_path(link_flags(Needs(MUSL))), "w") as f:
        f.write(record)
    link_executable([str(obj)], MUSL, str(tmp_path / "prog"))
    assert zig_calls == ["cc-###"]
    assert linked_program_runs(tmp_path / "prog")


def test_paths_with_blanks(tmp_path, zig_calls):
    """The printed command cannot carry a blank: no record is made from such a link; with one,
    the objects and output are put in as whole arguments."""
    spaced = tmp_path / "a dir"
    spaced.mkdir()
    obj = hello_object(spaced, MUSL)
    forget_record(MUSL)
    link_executable([str(obj)], MUSL, str(spaced / "out 1"))
    assert zig_calls == ["cc-###"]
    assert not os.path.exists(link_record_path(link_flags(Needs(MUSL))))
    link_executable([str(hello_object(tmp_path, MUSL))], MUSL, str(tmp_path / "plain"))
    link_executable([str(obj)], MUSL, str(spaced / "out 2"))
    assert zig_calls[-1] == "ld.lld"
    assert all(linked_program_runs(p) for p in
               (spaced / "out 1", tmp_path / "plain", spaced / "out 2"))


def test_recorded_from_above_zig_cache_names_absolute_paths(tmp_path, zig_calls, monkeypatch):
    """zig prints its cache's paths relative to a working directory above the cache; the
    record must not depend on where the first link ran."""
    obj = hello_object(tmp_path, MUSL)
    forget_record(MUSL)
    monkeypatch.chdir(os.path.dirname(toolchain.zig_cache_dir()))
    link_executable([str(obj)], MUSL, str(tmp_path / "first"))
    with open(link_record_path(link_flags(Needs(MUSL)))) as f:
        recorded = json.load(f)
    assert all(os.path.isabs(t) for t in recorded if "/" in t and not t.startswith("-"))
    monkeypatch.chdir(tmp_path)
    link_executable([str(obj)], MUSL, "second")
    assert zig_calls == ["cc-###", "ld.lld"]
    assert linked_program_runs(tmp_path / "first") and linked_program_runs(tmp_path / "second")
