"""allvm-binfmt: allexes without `#!` and raw bitcode run by the kernel, as root and as nobody.

Registrations use names unique to the test run and are removed afterwards, also when a test
fails. These tests need root, as CI has.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import PROBE, compile_c, run_tool
from test_alley import CTORS, DTORS
from test_launcher import wrapped

from allvm import binfmt

PREFIX = f"allvmtest{os.getpid()}"


def binfmt_tool(*args) -> subprocess.CompletedProcess:
    return run_tool("allvm-binfmt", *args, "-name-prefix", PREFIX)


def registered() -> list[str]:
    return [n for n, fields in binfmt.status(PREFIX).items() if fields is not None]


@pytest.fixture(scope="module")
def formats():
    proc = binfmt_tool("register")
    try:
        assert proc.returncode == 0, proc.stderr
        yield
    finally:
        binfmt_tool("unregister")
        if registered():  # the tool failed to: clean up directly, then fail
            binfmt.unregister(PREFIX)
            pytest.fail("allvm-binfmt unregister left registrations behind")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A directory every user can read, with the probe as a shebang-less allexe, as raw
    bitcode and as wrapped bitcode, all executable, and a cache for them."""
    directory = Path(tempfile.mkdtemp(prefix="allvm-binfmt-"))
    try:
        bc = compile_c(PROBE, directory / "probe.bc")
        bc.chmod(0o755)
        wrapper = directory / "wrapped.bc"
        wrapper.write_bytes(wrapped(bc.read_bytes()))
        allexe = directory / "probe.allexe"
        with zipfile.ZipFile(allexe, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(bc, "main.bc")
        for path in (directory, allexe, wrapper):
            path.chmod(0o755)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                          **kwargs)


def expected(argv0: str, *args: str) -> str:
    lines = "".join(f"argv[{i}]={a}\n" for i, a in enumerate([argv0, *args]))
    return f"{CTORS}{lines}{DTORS}"


def test_status_names_the_launcher_and_flags(formats):
    proc = binfmt_tool("status")
    assert proc.returncode == 0
    interpreter = Path(sys.executable).parent / "alley-binfmt"
    for name in binfmt.names(PREFIX):
        assert f"{name}: enabled, interpreter {interpreter}, flags PF\n" in proc.stdout


@pytest.mark.parametrize("name", ["probe.allexe", "probe.bc", "wrapped.bc"])
def test_runs_as_root_with_argv0_kept(formats, shared, name):
    path = shared / name
    proc = run([path, "args", "x"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, expected(str(path), "args", "x"),
                                                           "")
    proc = run(["bash", "-c", f'exec -a custom "{path}" args'])
    assert proc.stdout == expected("custom", "args"), proc.stderr


@pytest.mark.parametrize("name", ["-noexec", "--help"])
def test_a_file_named_like_an_option_is_the_program(formats, shared, name):
    """execve("-noexec") of an allexe without `#!`: binfmt_misc hands alley-binfmt that name,
    which is the program, never an option of alley's."""
    target = shared / name
    shutil.copy(shared / "probe.allexe", target)
    try:
        code = f"import os, sys; os.execv({name!r}, [{name!r}, *sys.argv[1:]])"
        proc = run([sys.executable, "-c", code, "args"], cwd=shared)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, expected(name, "args"), "")
    finally:
        target.unlink()


@pytest.mark.parametrize("name", ["probe.allexe", "probe.bc"])
def test_runs_as_nobody(formats, shared, name):
    """The launcher was opened at registration: nobody runs the program from the system cache
    root prepared for everyone (allready -system), whatever the install's directory lets
    nobody see, and with no cache of its own."""
    system = str(shared / f"system-cache-{name}")
    env = {**os.environ, "ALLVM_SYSTEM_CACHE": system}
    assert run_tool("allready", "-system", shared / name, env=env).returncode == 0
    proc = run([shared / name, "args"], env={"ALLVM_SYSTEM_CACHE": system, "HOME": "/"},
               user="nobody", group="nogroup", extra_groups=[], cwd="/")
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, expected(str(shared / name), "args"), "")


WHICH_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char path[4096];
    for (char *dir = strtok(getenv("PATH"), ":"); dir; dir = strtok(NULL, ":")) {
        snprintf(path, sizeof path, "%s/%s", dir, argv[1]);
        if (access(path, X_OK) == 0) { puts(path); return 0; }
    }
    return 1;
}
"""


def test_original_style_allexe_runs_as_which(formats, tmp_path):
    """As the original toolchain shipped them: older bitcode, `x86_64-unknown-linux-musl`,
    a zip with main.bc and no `#!` line, named after the program."""
    source = tmp_path / "which.c"
    source.write_text(WHICH_C)
    bc = tmp_path / "which.bc"
    subprocess.run(["clang-14", "-target", "x86_64-unknown-linux-musl", "-O2", "-c",
                    "-emit-llvm", source, "-o", bc], check=True, capture_output=True)
    which = tmp_path / "which"
    with zipfile.ZipFile(which, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(bc, "main.bc")
    which.chmod(0o755)
    proc = run(["./which", "sh"], cwd=tmp_path, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "/usr/bin/sh\n", "")


def test_unregister_removes_exactly_what_register_added(formats):
    other = f"{PREFIX}other"
    assert run_tool("allvm-binfmt", "register", "-name-prefix", other).returncode == 0
    try:
        proc = run_tool("allvm-binfmt", "unregister", "-name-prefix", other)
        assert proc.stdout.splitlines() == [f"unregistered {n}" for n in binfmt.names(other)]
        assert not [n for n, f in binfmt.status(other).items() if f is not None]
        assert registered() == binfmt.names(PREFIX)  # the others stay
    finally:
        binfmt.unregister(other)


def test_registers_where_binfmt_misc_is_not_mounted():
    """In a mount namespace of its own (the machine's mount stays), binfmt_misc unmounted."""
    script = (f"umount {binfmt.BINFMT_DIR} 2>/dev/null; "
              f"test ! -e {binfmt.BINFMT_DIR}/register && "
              f"'{Path(sys.executable).parent / 'allvm-binfmt'}' register -name-prefix {PREFIX}m "
              f"&& cat {binfmt.BINFMT_DIR}/{PREFIX}m-bitcode; "
              f"'{Path(sys.executable).parent / 'allvm-binfmt'}' unregister "
              f"-name-prefix {PREFIX}m")
    try:
        proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
        assert proc.returncode == 0, proc.stderr
        assert "enabled\ninterpreter " in proc.stdout
    finally:
        binfmt.unregister(f"{PREFIX}m")


def test_registering_needs_root(monkeypatch, capsys):
    from allvm.tools import allvm_binfmt

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sys, "argv", ["allvm-binfmt", "register", "-name-prefix", PREFIX])
    assert allvm_binfmt.main() == 1
    assert capsys.readouterr().err == (
        "allvm-binfmt: registering needs root (binfmt_misc is system-wide)\n")
