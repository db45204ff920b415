"""alley's native launcher (allvm/launcher.c): the same keys and answers as the Python side,
the caller's argv, environment and signal dispositions, and damaged cache entries rebuilt.

`alley -launcher-key FILE` prints the key the launcher computes, or `defer` where it leaves the
file to the Python alley; the Python side's key comes from allvm.cache.static_binary_key.
"""

import io
import os
import signal
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from badinputs import ALLEXE_CASES
from conftest import compile_c, probe_allexe, run_tool, tool_path
from test_alley import CTORS, DTORS
from test_hostile import bad_inputs, bitcode  # noqa: F401  (session fixtures: real modules)

from allvm import launcher
from allvm.allexe import Allexe
from allvm.cache import RECORD_SETTLE_SECONDS, static_binary_key
from allvm.errors import AllvmError
from allvm.ir import llvm

ALLEY = tool_path("alley")


def launcher_key(path: Path) -> str | None:
    proc = subprocess.run([ALLEY, "-launcher-key", str(path)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode in (0, 3), proc.stderr  # never a crash
    return proc.stdout.strip() if proc.returncode == 0 else None


def python_key(path: Path) -> str | None:
    try:
        return static_binary_key(Allexe.open(str(path)))
    except (AllvmError, OSError):
        return None


def module(index: int) -> bytes:
    """A small real module: `main` in module 0, a function `f<index>` in the others."""
    body = ("define i32 @main() {\n  ret i32 0\n}\n" if index == 0 else
            f"define i32 @f{index}(i32 %x) {{\n  %y = add i32 %x, {index}\n  ret i32 %y\n}}\n")
    return llvm().parse_assembly(body).as_bitcode()


def zipped(count: int, method: int, shebang: bytes = b"", prefixed: bool = False) -> bytes:
    """An allexe of `count` modules; a shebang written with the zip (offsets count from the
    file's start, as bc2allvm writes them) or put in front of a finished zip (`prefixed`)."""
    buf = io.BytesIO()
    if not prefixed:
        buf.write(shebang)
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(count):
            z.writestr(zipfile.ZipInfo("main.bc" if i == 0 else f"lib/m{i}.so.bc"), module(i),
                       compress_type=method)
    return (shebang if prefixed else b"") + buf.getvalue()


def wrapped(bc: bytes) -> bytes:
    """`bc` inside LLVM's bitcode wrapper header."""
    return struct.pack("<5I", 0x0B17C0DE, 0, 20, len(bc), 0x01000007) + bc


@pytest.fixture(scope="module")
def good_inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("parity")
    shebang = f"#!{ALLEY}\n".encode()
    files = {}
    for count in (1, 2, 50):
        for method, how in ((zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")):
            files[f"{count}-{how}"] = zipped(count, method)
            files[f"{count}-{how}-shebang"] = zipped(count, method, shebang)
            files[f"{count}-{how}-prefixed"] = zipped(count, method, shebang, prefixed=True)
    files["raw-bitcode"] = module(0)
    files["wrapped-bitcode"] = wrapped(module(0))
    paths = {}
    for name, data in files.items():
        paths[name] = d / f"{name}.allexe"
        paths[name].write_bytes(data)
    return paths


def test_launcher_and_python_compute_the_same_keys(good_inputs):
    for name, path in good_inputs.items():
        key = python_key(path)
        assert key is not None, name
        assert launcher_key(path) == key, name


def test_a_bare_bitcode_file_is_keyed_as_its_stored_allexe(good_inputs):
    assert python_key(good_inputs["raw-bitcode"]) == python_key(good_inputs["1-stored"])


def test_hostile_inputs_are_left_to_python_or_keyed_alike(bad_inputs):  # noqa: F811
    for case in ALLEXE_CASES:
        key = launcher_key(bad_inputs[case])
        # The launcher may only answer where Python gives the same answer.
        assert key is None or key == python_key(bad_inputs[case]), case


def test_a_crc_is_never_a_key(probe_allexe_built, tmp_path):
    """An allexe whose directory claims the probe's CRC for other bytes gets another key, and
    the launcher never runs the probe's binary for it."""
    probe = probe_allexe_built
    assert run_tool("allready", probe).returncode == 0
    data = probe.read_bytes()
    forged_main = module(0)
    real = Allexe.open(str(probe))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("main.bc", forged_main)
    forged = bytearray(buf.getvalue())
    # Rewrite the CRC in the local header and the central directory to the probe's.
    crc = struct.pack("<I", real.main.crc)
    forged[14:18] = crc
    central = forged.rfind(b"PK\x01\x02")
    forged[central + 16 : central + 20] = crc
    fake = tmp_path / "fake.allexe"
    fake.write_bytes(bytes(forged))
    assert Allexe.open(str(fake)).main.crc == real.main.crc and data != bytes(forged)
    assert launcher_key(fake) not in (None, launcher_key(probe))
    proc = subprocess.run([ALLEY, str(fake), "args"], capture_output=True, text=True)
    assert "ctor" not in proc.stdout  # not the probe
    assert proc.returncode == 1 and "CRC mismatch" in proc.stderr


@pytest.fixture
def probe_allexe_built(tmp_path) -> Path:
    return probe_allexe(tmp_path)


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    return probe_allexe(tmp_path_factory.mktemp("probe"))


def run(args, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run([str(a) for a in args], **kwargs)


def body(proc: subprocess.CompletedProcess) -> str:
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert proc.stdout.startswith(CTORS) and proc.stdout.endswith(DTORS), proc.stdout
    return proc.stdout.removeprefix(CTORS).removesuffix(DTORS)


CACHED = ["nothing", "static binary"]  # the Python alley answers a miss, the launcher a hit


def cache_as(probe: Path, cached: str) -> None:
    if cached == "static binary":
        assert run_tool("allready", probe).returncode == 0


@pytest.mark.parametrize("cached", CACHED)
def test_exec_a_names_the_program(probe, cached):
    cache_as(probe, cached)
    proc = run(["bash", "-c", f'exec -a NAME "{ALLEY}" "{probe}" args x'])
    assert body(proc) == "argv[0]=NAME\nargv[1]=args\nargv[2]=x\n"
    proc = run([ALLEY, probe, "args"])
    assert body(proc) == f"argv[0]={probe}\nargv[1]=args\n"


@pytest.mark.parametrize("cached", CACHED)
@pytest.mark.parametrize("how", ["alley", "shebang"])
def test_caller_signal_dispositions_reach_the_program(probe, cached, how):
    cache_as(probe, cached)
    command = [ALLEY, probe, "signals"] if how == "alley" else [probe, "signals"]
    for disposition, default in ((signal.SIG_DFL, 1), (signal.SIG_IGN, 0)):
        def caller(d=disposition):
            signal.signal(signal.SIGPIPE, d)
            signal.signal(signal.SIGINT, d)

        out = body(run(command, preexec_fn=caller))
        assert f"SIGPIPE default: {default}\nSIGINT default: {default}\n" in out


@pytest.mark.parametrize("cached", CACHED)
def test_environment_argv_layout_and_exit_status(probe, isolated_cache, cached):
    cache_as(probe, cached)
    env = ["env", "-i", f"ALLVM_CACHE_DIR={isolated_cache}", "A=1 2", "EMPTY="]
    assert body(run([*env, probe, "env"])).splitlines() == [
        f"ALLVM_CACHE_DIR={isolated_cache}", "A=1 2", "EMPTY="]
    layout = body(run([*env, ALLEY, probe, "layout"]))
    assert "envp==&argv[argc+1]: 1\nenvp==environ: 1\nargv[argc]==NULL: 1\n" in layout
    assert run([probe, "exit", "37"]).returncode == 37


@pytest.mark.parametrize("cached", CACHED)
def test_the_callers_loader_variables_and_directory_are_the_programs(probe, isolated_cache,
                                                                    cached, tmp_path):
    """LD_PRELOAD and the like reach the program, in their places, but not the Python alley's
    interpreter (a library that is no ELF file would stop it); modules in the directory a
    program is started from are not alley's."""
    cache_as(probe, cached)
    (tmp_path / "not-elf.so").write_text("not a library\n")
    (tmp_path / "signal.py").write_text("raise SystemExit('imported from the caller')\n")
    variables = [f"ALLVM_CACHE_DIR={isolated_cache}", f"LD_PRELOAD={tmp_path}/not-elf.so",
                 "A=1", "LD_LIBRARY_PATH=/nowhere", "PYTHONPATH=."]
    proc = run(["env", "-i", *variables, probe, "env"], cwd=tmp_path)
    assert body(proc).splitlines() == variables


@pytest.mark.parametrize("cached", CACHED)
def test_a_stub_runs_the_allexe_beside_it_under_the_callers_argv0(probe, cached, tmp_path):
    """A copy of the launcher named `greet` beside `greet.allexe` is that program, started by
    any name and through a symlink to it; one without its allexe says so."""
    cache_as(probe, cached)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "greet.allexe").symlink_to(probe)
    launcher.install_stub(str(bindir / "greet"))
    (tmp_path / "elsewhere").symlink_to(bindir / "greet")
    for path in (bindir / "greet", tmp_path / "elsewhere"):
        proc = run(["NAME", "args", "-x"], executable=path)
        assert body(proc) == "argv[0]=NAME\nargv[1]=args\nargv[2]=-x\n"
    launcher.install_stub(str(tmp_path / "lonely"))
    proc = run([tmp_path / "lonely", "args"])
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and f"'{tmp_path / 'lonely.allexe'}'" in proc.stderr


def test_symlinks_to_a_mux_select_by_name(tmp_path):
    sources = {name: f'#include <stdio.h>\nint main(void) {{ puts("{name}"); return 0; }}\n'
               for name in ("one", "two")}
    allexes = []
    for name, source in sources.items():
        bc = compile_c(source, tmp_path / f"{name}.bc")
        assert run_tool("bc2allvm", bc).returncode == 0
        allexes.append(tmp_path / f"{name}.allexe")
    mux = tmp_path / "mux.allexe"
    assert run_tool("allmux", *allexes, "-o", mux).returncode == 0
    assert run_tool("allready", mux).returncode == 0
    for name in sources:
        (tmp_path / name).symlink_to(mux)
        proc = run([tmp_path / name])
        assert (proc.returncode, proc.stdout) == (0, f"{name}\n"), proc.stderr


def settle() -> None:
    """Wait until files written now are old enough for the launcher to remember them."""
    time.sleep(RECORD_SETTLE_SECONDS + 0.1)


def binary_of(probe: Path, cache: Path) -> Path:
    return cache / "static_binaries" / launcher_key(probe)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_binary_is_detected_and_rebuilt(probe_allexe_built, isolated_cache, damage):
    probe = probe_allexe_built
    assert run_tool("allready", probe).returncode == 0
    settle()
    assert body(run([probe, "args"])) == f"argv[0]={probe}\nargv[1]=args\n"  # recorded
    assert list((isolated_cache / "launch").iterdir())
    binary = binary_of(probe, isolated_cache)
    data = bytearray(binary.read_bytes())
    if damage == "truncated":
        binary.write_bytes(data[: len(data) // 2])
    else:  # same size, one byte in the code changed: only the digest tells
        data[len(data) // 3] ^= 0x40
        binary.write_bytes(bytes(data))
    assert body(run([probe, "args"])) == f"argv[0]={probe}\nargv[1]=args\n"
    assert not binary.exists()  # the Python alley removed the damaged entry
    assert run_tool("allready", probe).returncode == 0
    assert body(run([probe, "args"])) == f"argv[0]={probe}\nargv[1]=args\n"


def test_allexe_changed_in_place_runs_the_new_program(tmp_path, isolated_cache):
    first, second = (compile_c(f'#include <stdio.h>\nint main(void) {{ puts("{w}"); }}\n',
                               tmp_path / f"{w}.bc") for w in ("first", "second"))
    program = tmp_path / "program.allexe"
    assert run_tool("bc2allvm", first, "-o", program).returncode == 0
    other = tmp_path / "other.allexe"
    assert run_tool("bc2allvm", second, "-o", other).returncode == 0
    assert run_tool("allready", program).returncode == 0
    assert run_tool("allready", other).returncode == 0
    settle()
    assert run([program]).stdout == "first\n"  # recorded: same inode from now on
    with open(program, "r+b") as f:  # rewritten in place: the inode stays
        f.write(other.read_bytes())
        f.truncate()
    assert run([program]).stdout == "second\n"


def test_unusable_cache_still_runs(probe):
    proc = run([ALLEY, probe, "args"], env={**os.environ, "ALLVM_CACHE_DIR": "/dev/null"})
    assert body(proc) == f"argv[0]={probe}\nargv[1]=args\n"


def test_launcher_is_built_on_first_use_where_pip_put_the_script(tmp_path, monkeypatch):
    """A pip install without make: `alley` is the Python script until its first use."""
    script = tmp_path / "bin" / "alley"
    script.parent.mkdir()
    script.write_text("#!/usr/bin/env python3\n# the script pip installs\n")
    monkeypatch.setattr(launcher, "launcher_path", lambda: str(script))
    assert not launcher.is_current()
    assert launcher.ensure_installed()
    assert script.read_bytes().startswith(b"\x7fELF") and launcher.is_current()
    assert os.readlink(tmp_path / "bin" / "alley-binfmt") == "alley"


def test_launcher_is_rebuilt_when_its_source_changes(tmp_path, monkeypatch):
    changed = tmp_path / "launcher.c"
    changed.write_text(Path(launcher.SOURCE).read_text() + "\n/* changed */\n")
    installed = launcher.launcher_path()
    assert launcher.is_current(installed)
    monkeypatch.setattr(launcher, "SOURCE", str(changed))
    assert not launcher.is_current(installed)
