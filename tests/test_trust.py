"""The cache and the launcher as a system component: what another user can write is hostile.

Each attack runs as the user who would make it (`nobody`, through setpriv) against root's
programs, or as the case needs; every test fails on a launcher or cache that trusts the files
it finds. These tests need root, as CI has. Everything they make is removed afterwards.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from conftest import build_allexe, tool_path

from allvm import cache as cache_format
from allvm.cache import RECORD_SETTLE_SECONDS, seal
from allvm.launcher import install_stub

ALLEY = tool_path("alley")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PROGRAM_C = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    printf("the program ran:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    return 0;
}
"""
HOSTILE_C = '#include <stdio.h>\nint main(void) { puts("HOSTILE CODE RAN"); return 0; }\n'


@pytest.fixture(scope="module")
def world():
    """A directory every user can read and enter (nobody's files go in `nobody/`), with root's
    program and a hostile program, both as allexes."""
    directory = Path(tempfile.mkdtemp(prefix="allvm-trust-"))
    try:
        directory.chmod(0o755)
        build = directory / "build"
        build.mkdir()
        for name, source in (("prog", PROGRAM_C), ("hostile", HOSTILE_C)):
            shutil.copy(build_allexe(build, name, source), directory / f"{name}.allexe")
        nobody = directory / "nobody"
        nobody.mkdir()
        os.chown(nobody, 65534, 65534)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(argv, *, env=None, user=None, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 60)
    prefix = NOBODY if user == "nobody" else []
    return subprocess.run([*prefix, *map(str, argv)], capture_output=True, text=True,
                          env=env if env is not None else dict(os.environ), **kwargs)


def ran_program(proc, *args: str) -> bool:
    return proc.returncode == 0 and proc.stdout.startswith("the program ran:") and \
        proc.stdout.split()[4:] == list(args) and "HOSTILE" not in proc.stdout


def key_of(allexe: Path) -> str:
    proc = run([ALLEY, "-launcher-key", allexe])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def settle(path: Path) -> None:
    """Wait until the launcher records `path`: its ctime must be old enough (cache.py)."""
    age = time.time() - path.stat().st_ctime
    if age <= RECORD_SETTLE_SECONDS:
        time.sleep(RECORD_SETTLE_SECONDS - age + 0.2)


def records(root: Path) -> list[Path]:
    directory = root / cache_format.LAUNCH_RECORDS
    return sorted(directory.iterdir()) if directory.exists() else []


def python_alley(*args) -> list[str]:
    """The Python alley as the launcher starts it (its cache-hit path included)."""
    return [sys.executable, "-I", "-m", "allvm.tools.alley", *map(str, args)]


# ---------------------------------------------------------------- 1. a cache others control

def plant(root: Path, key: str, uid: int) -> None:
    """A sealed copy of /usr/bin/id as the static binary under `key`: anyone can seal."""
    binaries = root / cache_format.STATIC_BINARIES
    binaries.mkdir(parents=True, exist_ok=True)
    (binaries / key).write_bytes(seal(Path("/usr/bin/id").read_bytes()))
    (binaries / key).chmod(0o755)
    for path in (root, binaries, binaries / key):
        os.chown(path, uid, uid)


@pytest.mark.parametrize("variable", ["ALLVM_CACHE_DIR", "XDG_CACHE_HOME"])
def test_a_cache_nobody_made_is_not_used(world, tmp_path, variable):
    """nobody pre-creates root's cache (also as XDG_CACHE_HOME, which `su` keeps) with its
    binary under the key of root's program: root runs its own program, with one warning."""
    base = Path(tempfile.mkdtemp(dir=world / "nobody"))
    os.chown(base, 65534, 65534)
    root = base / "allvm" if variable == "XDG_CACHE_HOME" else base
    plant(root, key_of(world / "prog.allexe"), 65534)
    env = {**os.environ, variable: str(base)}
    env.pop("ALLVM_CACHE_DIR" if variable == "XDG_CACHE_HOME" else "XDG_CACHE_HOME", None)
    for argv in ([world / "prog.allexe", "x"], python_alley(world / "prog.allexe", "x")):
        proc = run(argv, env=env)
        assert ran_program(proc, "x"), proc.stdout + proc.stderr
        assert "uid=" not in proc.stdout
        assert proc.stderr.count("warning: cache") == 1 and "not safe" in proc.stderr


def test_a_cache_in_a_directory_nobody_can_change_is_not_used(world):
    """Root's own cache, but inside nobody's directory (nobody could rename it away)."""
    base = Path(tempfile.mkdtemp(dir=world / "nobody"))
    os.chown(base, 65534, 65534)
    root = base / "cache"
    plant(root, key_of(world / "prog.allexe"), 0)
    root.chmod(0o700)
    proc = run([world / "prog.allexe"], env={**os.environ, "ALLVM_CACHE_DIR": str(root)})
    assert ran_program(proc) and "uid=" not in proc.stdout, proc.stdout + proc.stderr
    assert "not safe" in proc.stderr


def test_a_cache_made_under_umask_0_is_private(world, tmp_path):
    root = tmp_path / "made" / "cache"
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    for tool in ("alley", "allready"):
        proc = run([tool_path(tool), world / "prog.allexe"], env=env,
                   preexec_fn=lambda: os.umask(0))
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    made = [root.parent, root, *(p for p in root.rglob("*") if p.is_dir())]
    assert {oct(p.stat().st_mode & 0o777) for p in made} == {"0o700"}


def test_a_world_writable_cache_whose_entry_nobody_replaced_is_not_used(world):
    """A cache made 0777 (os.makedirs under umask 0, as before): nobody replaced root's entry."""
    base = Path(tempfile.mkdtemp(dir=world))  # a directory nobody can reach, root's
    base.chmod(0o755)
    root = base / "cache"
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    assert run([tool_path("allready"), world / "prog.allexe"], env=env).returncode == 0
    for directory in (root, *root.iterdir()):
        directory.chmod(0o777)
    key = key_of(world / "prog.allexe")
    binary = root / cache_format.STATIC_BINARIES / key
    replacement = Path(tempfile.mkdtemp(dir=world / "nobody")) / "id"
    replacement.write_bytes(seal(Path("/usr/bin/id").read_bytes()))
    os.chown(replacement.parent, 65534, 65534)
    os.chown(replacement, 65534, 65534)
    replacement.chmod(0o755)
    proc = run(["mv", "-f", replacement, binary], user="nobody")
    assert proc.returncode == 0, proc.stderr  # the attack works on such a directory
    for argv in ([world / "prog.allexe"], python_alley(world / "prog.allexe")):
        proc = run(argv, env=env)
        assert ran_program(proc) and "uid=" not in proc.stdout, proc.stdout + proc.stderr
        assert "writable by others" in proc.stderr


def test_an_entry_not_the_owners_is_not_run(world, tmp_path):
    """Root's safe cache holding a file of nobody's under the key: never run."""
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    plant(root, key_of(world / "prog.allexe"), 0)
    os.chown(root / cache_format.STATIC_BINARIES / key_of(world / "prog.allexe"), 65534, 65534)
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    for argv in ([world / "prog.allexe"], python_alley(world / "prog.allexe")):
        proc = run(argv, env=env)
        assert ran_program(proc) and "uid=" not in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------- 2. records and seals

def record_name(path: Path) -> str:
    st = path.stat()
    return cache_format._digest(cache_format.CODEGEN_ID, f"{st.st_dev}:{st.st_ino}")


def identity(path: Path) -> str:
    st = path.stat()
    return f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns}"


@pytest.mark.parametrize("form", ["link", "sealed file"])
@pytest.mark.parametrize("key", ["../../../usr/bin/id", "../../../../../../../../../usr/bin/id",
                                 "0123ABCD-" + "0" * 39 + "/"])
def test_a_record_whose_key_is_a_path_is_refused(world, tmp_path, key, form):
    """A launch record whose key is a path to an unsealed binary, with that binary's
    identity (as a record is kept, and as a sealed file, as records were once kept): the key
    fails its format check, the record is ignored, the program runs."""
    allexe = tmp_path / "prog.allexe"
    shutil.copy(world / "prog.allexe", allexe)
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    (root / cache_format.LAUNCH_RECORDS).mkdir(mode=0o700)
    (root / cache_format.STATIC_BINARIES).mkdir(mode=0o700)
    settle(allexe)
    text = f"{identity(allexe)} {key} {identity(Path('/usr/bin/id'))}"
    record = root / cache_format.LAUNCH_RECORDS / record_name(allexe)
    if form == "link":
        os.symlink(text, record)
    else:
        record.write_bytes(seal(text.encode()))
    proc = run([allexe, "y"], env={**os.environ, "ALLVM_CACHE_DIR": str(root)})
    assert ran_program(proc, "y") and "uid=" not in proc.stdout, proc.stdout + proc.stderr


def test_an_unsealed_entry_is_never_run(world, tmp_path):
    root = tmp_path / "cache"
    binaries = root / cache_format.STATIC_BINARIES
    binaries.mkdir(parents=True, mode=0o700)
    root.chmod(0o700)
    shutil.copy("/usr/bin/id", binaries / key_of(world / "prog.allexe"))
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    for argv in ([world / "prog.allexe"], python_alley(world / "prog.allexe")):
        proc = run(argv, env=env)
        assert ran_program(proc) and "uid=" not in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------- 3. scratch files, FIFOs

def test_no_file_is_written_through_a_planted_link(world, tmp_path):
    """Links at every name a start of pid P might create (the old `tmp/P-launch`, a record's
    temporary name) point at a 0600 file of root's: it stays as it was."""
    allexe = tmp_path / "prog.allexe"
    shutil.copy(world / "prog.allexe", allexe)
    root = tmp_path / "cache"
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    assert run([tool_path("allready"), allexe], env=env).returncode == 0
    victim = tmp_path / "secret"
    victim.write_text("root's secret\n")
    victim.chmod(0o600)
    for directory in ("tmp", cache_format.LAUNCH_RECORDS):
        (root / directory).mkdir(mode=0o700, exist_ok=True)
    settle(allexe)
    name = record_name(allexe)
    script = (f'ln -s {victim} {root}/tmp/$$-launch; '
              f'ln -s {victim} {root}/{cache_format.LAUNCH_RECORDS}/{name}.$$; exec "$@"')
    proc = run(["sh", "-c", script, "sh", allexe, "z"], env=env)
    assert ran_program(proc, "z"), proc.stdout + proc.stderr
    assert victim.read_text() == "root's secret\n"
    assert victim.stat().st_mode & 0o777 == 0o600


def test_a_fifo_in_the_cache_does_not_hang_a_start(world, tmp_path):
    root = tmp_path / "cache"
    binaries = root / cache_format.STATIC_BINARIES
    binaries.mkdir(parents=True, mode=0o700)
    root.chmod(0o700)
    os.mkfifo(binaries / key_of(world / "prog.allexe"))
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    for argv in ([world / "prog.allexe"], python_alley(world / "prog.allexe")):
        proc = run(argv, env=env, timeout=30)
        assert ran_program(proc), proc.stdout + proc.stderr


# ---------------------------------------------------------------- 4. stubs fail closed

@pytest.fixture
def stub(world, tmp_path) -> Path:
    """`sort`, a stub for `sort.allexe` beside it, and `data.txt`, hostile data that is an
    allexe too: a stub that ran its first argument would run it."""
    directory = tmp_path / "bin"
    directory.mkdir()
    shutil.copy(world / "prog.allexe", directory / "sort.allexe")
    shutil.copy(world / "hostile.allexe", directory / "data.txt")
    install_stub(str(directory / "sort"))
    return directory / "sort"


@pytest.mark.parametrize("argv0", ["alley", "alley-binfmt", "/usr/bin/alley"])
def test_a_stub_called_alley_still_runs_its_allexe(stub, argv0):
    proc = run(["bash", "-c", f'exec -a {argv0} "$0" data.txt x', stub], cwd=stub.parent)
    assert ran_program(proc, "data.txt", "x"), proc.stdout + proc.stderr
    assert proc.stdout.split()[3] == argv0


def test_a_stub_without_proc_fails_closed(stub):
    script = 'mount -t tmpfs none /proc && exec "$0" data.txt'
    proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, stub],
               cwd=stub.parent)
    assert proc.returncode != 0 and "HOSTILE" not in proc.stdout, proc.stdout
    assert proc.stderr.startswith("alley: cannot find this launcher's own file")
    assert len(proc.stderr.splitlines()) == 1, proc.stderr


def test_a_stub_at_a_path_longer_than_path_max(stub, tmp_path):
    """Its own path is too long for /proc/self/exe to name: it runs from its relative name."""
    deep = tmp_path / "deep"
    deep.mkdir()
    parts = ["d" * 200] * 25  # 5,000 characters: past PATH_MAX
    fd = os.open(deep, os.O_RDONLY)
    try:
        for part in parts:
            os.mkdir(part, dir_fd=fd)
            fd, old = os.open(part, os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
        for name in ("sort", "sort.allexe", "data.txt"):
            with open(stub.parent / name, "rb") as src:
                out = os.open(name, os.O_WRONLY | os.O_CREAT, 0o755, dir_fd=fd)
                os.write(out, src.read())
                os.close(out)

        def enter():
            os.fchdir(fd)

        proc = subprocess.run(["./sort", "data.txt"], preexec_fn=enter, capture_output=True,
                              text=True, timeout=60, pass_fds=(fd,))
        assert ran_program(proc, "data.txt"), proc.stdout + proc.stderr
    finally:
        os.close(fd)
        subprocess.run(["rm", "-rf", str(deep)], check=False)


# ---------------------------------------------------------------- 5. a file named like an option

def exec_by_name(directory: Path, name: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """execve(NAME, ...) with NAME exactly as given (no `./`): the kernel hands it on so."""
    code = f"import os, sys; os.execv({name!r}, [{name!r}, *sys.argv[1:]])"
    return run([sys.executable, "-c", code, *args], cwd=directory, **kwargs)


def test_a_file_named_like_an_option_is_the_program(world, tmp_path):
    for name in ("-noexec", "-force-static", "--help", "-argv0"):
        shutil.copy(world / "prog.allexe", tmp_path / name)
        proc = exec_by_name(tmp_path, name, "a")
        assert ran_program(proc, "a"), (name, proc.stdout + proc.stderr)
        assert proc.stdout.split()[3] == name


def test_a_file_named_like_an_option_through_the_python_alley(world, tmp_path):
    """alley as pip installs it (a Python script) as the `#!` interpreter: the same."""
    script = tmp_path / "alley-script"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom allvm.tools.alley import main\n"
                      "sys.exit(main())\n")
    script.chmod(0o755)
    body = (world / "prog.allexe").read_bytes().split(b"\n", 1)[1]
    target = tmp_path / "-noexec"
    target.write_bytes(f"#!{script}\n".encode() + body)
    target.chmod(0o755)
    proc = exec_by_name(tmp_path, "-noexec", "b")
    assert ran_program(proc, "b"), proc.stdout + proc.stderr


# ---------------------------------------------------------------- 6. writes that keep the ctime

def same_size_allexes(world: Path, directory: Path) -> tuple[bytes, bytes]:
    """root's program and the hostile one as allexes of one size (stored, padded with a zip
    comment), so one can be written over the other through a mapping."""
    made = []
    for name in ("prog", "hostile"):
        out = directory / f"{name}-stored.allexe"
        with zipfile.ZipFile(world / f"{name}.allexe") as z, \
                zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as w:
            w.writestr("main.bc", z.read("main.bc"))
        made.append(out)
    size = max(p.stat().st_size for p in made) + 16
    contents = []
    for path in made:
        with zipfile.ZipFile(path, "a") as z:
            z.comment = b"x" * (size - path.stat().st_size)
        contents.append(path.read_bytes())
    assert len(contents[0]) == len(contents[1])
    return contents[0], contents[1]


def test_a_change_through_a_shared_mapping_runs_the_new_content(world, tmp_path):
    import mmap

    first, second = same_size_allexes(world, tmp_path)
    root = tmp_path / "cache"
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    allexe = tmp_path / "prog.allexe"
    allexe.write_bytes(first)
    other = tmp_path / "other.allexe"
    other.write_bytes(second)
    assert run([tool_path("allready"), allexe, other], env=env).returncode == 0
    with open(allexe, "r+b") as f, mmap.mmap(f.fileno(), 0) as mapping:
        mapping[:] = first  # every page dirty now: later stores do not move the ctime
        settle(allexe)
        assert ran_program(run([ALLEY, allexe], env=env))  # records the identity
        assert records(root)
        ctime = allexe.stat().st_ctime_ns
        mapping[:] = second
        assert allexe.stat().st_ctime_ns == ctime  # the case: same identity, new content
        proc = run([ALLEY, allexe], env=env)
        assert "HOSTILE CODE RAN" in proc.stdout, proc.stdout + proc.stderr
    proc = run([ALLEY, allexe], env=env)
    assert "HOSTILE CODE RAN" in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------- 7. no quadratic work

def many_names(path: Path, count: int, duplicate: bool) -> None:
    """`count` modules whose names differ only in their last characters (8 KiB each)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("main.bc", b"BC\xc0\xde")
        for i in range(1, count):
            n = i - 1 if duplicate and i == count - 1 else i
            z.writestr(zipfile.ZipInfo("lib/" + "n" * 8192 + f"{n:05d}.bc"), b"BC\xc0\xde")


@pytest.mark.parametrize("duplicate", [False, True])
def test_many_near_identical_names_cost_no_quadratic_time(tmp_path, duplicate):
    """4,096 names of 8 KiB: comparing every pair took 30 s a start; sorting takes ms."""
    import warnings

    path = tmp_path / "many.allexe"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        many_names(path, 4096, duplicate)
    proc = run([ALLEY, "-launcher-key", path], timeout=10)
    assert proc.stdout.strip() == "defer" if duplicate else proc.returncode == 0, proc.stdout


# ---------------------------------------------------------------- the system cache

@pytest.fixture
def system_cache(world) -> Path:
    """Where root's system cache goes: a directory of root's that every user can reach."""
    base = Path(tempfile.mkdtemp(dir=world))
    base.chmod(0o755)
    yield base / "allvm"
    shutil.rmtree(base)


def test_nobody_runs_what_root_prepared_in_one_exec(world, tmp_path, system_cache):
    """Root fills the system cache; nobody, with no cache of its own, runs the program
    straight from it: no Python (alley's package is hidden from it), nothing written."""
    env = {**os.environ, "ALLVM_SYSTEM_CACHE": str(system_cache)}
    proc = run([tool_path("allready"), "-system", world / "prog.allexe"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert system_cache.stat().st_mode & 0o777 == 0o755
    home = Path(tempfile.mkdtemp(dir=world / "nobody"))
    os.chown(home, 65534, 65534)
    package = Path(cache_format.__file__).parent
    hide = f"mount -t tmpfs none {package} && exec {' '.join(NOBODY)} \"$@\""
    proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh",
                world / "prog.allexe", "w"],
               env={"ALLVM_SYSTEM_CACHE": str(system_cache), "HOME": str(home)})
    assert ran_program(proc, "w") and proc.stderr == "", proc.stdout + proc.stderr
    assert list(home.iterdir()) == []


def test_a_system_cache_others_can_write_is_not_used(world, system_cache):
    env = {**os.environ, "ALLVM_SYSTEM_CACHE": str(system_cache)}
    assert run([tool_path("allready"), "-system", world / "prog.allexe"], env=env).returncode == 0
    system_cache.chmod(0o777)
    proc = run([world / "prog.allexe"], env={**env, "ALLVM_CACHE_DIR": "/dev/null"})
    assert ran_program(proc) and "not safe" in proc.stderr, proc.stdout + proc.stderr


def test_only_root_fills_the_system_cache(world, system_cache):
    proc = run([tool_path("allready"), "-system", world / "prog.allexe"], user="nobody",
               env={**os.environ, "ALLVM_SYSTEM_CACHE": str(system_cache)})
    assert proc.returncode == 1 and proc.stderr.startswith("allready: -system: only root")
    assert not system_cache.exists()


# ---------------------------------------------------------------- options the launcher answers

def test_force_static_and_argv0_are_answered_without_python(world, tmp_path):
    root = tmp_path / "cache"
    env = {**os.environ, "ALLVM_CACHE_DIR": str(root)}
    assert run([tool_path("allready"), world / "prog.allexe"], env=env).returncode == 0
    package = Path(cache_format.__file__).parent
    hide = f'mount -t tmpfs none {package} && exec "$@"'
    for options, argv0 in (["-force-static"], None), (["-argv0", "name"], "name"), \
            (["--force-static", "--argv0", "n2", "--"], "n2"):
        proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh",
                    ALLEY, *options, world / "prog.allexe", "v"], env=env)
        assert ran_program(proc, "v"), (options, proc.stdout + proc.stderr)
        assert proc.stdout.split()[3] == (argv0 or str(world / "prog.allexe"))


def test_a_relative_cache_directory_is_made_and_used(world, tmp_path):
    env = {**os.environ, "ALLVM_CACHE_DIR": "relative/cache"}
    proc = run([tool_path("allready"), world / "prog.allexe"], env=env, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert (tmp_path / "relative" / "cache").stat().st_mode & 0o777 == 0o700
    package = Path(cache_format.__file__).parent  # a hit: the launcher alone answers
    hide = f'mount -t tmpfs none {package} && exec "$@"'
    proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh",
                world / "prog.allexe", "r"], env=env, cwd=tmp_path)
    assert ran_program(proc, "r"), proc.stdout + proc.stderr


def test_a_cache_that_cannot_exist_is_no_warning(world):
    """Under a file (/dev/null/cache), as ALLVM_CACHE_DIR=/dev/null: uncached, silently."""
    for root in ("/dev/null", "/dev/null/cache"):
        proc = run([world / "prog.allexe"], env={**os.environ, "ALLVM_CACHE_DIR": root})
        assert ran_program(proc) and proc.stderr == "", (root, proc.stderr)


def test_a_system_cache_hit_warns_of_an_unsafe_user_cache(world, tmp_path, system_cache):
    """The launcher answers from the system cache, and says once that the user's is not used."""
    env = {**os.environ, "ALLVM_SYSTEM_CACHE": str(system_cache)}
    assert run([tool_path("allready"), "-system", world / "prog.allexe"], env=env).returncode == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    mine.chmod(0o777)
    package = Path(cache_format.__file__).parent  # the launcher alone answers
    hide = f'mount -t tmpfs none {package} && exec "$@"'
    proc = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh",
                world / "prog.allexe", "s"], env={**env, "ALLVM_CACHE_DIR": str(mine)})
    assert ran_program(proc, "s"), proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(
        f"alley: warning: cache '{mine}' not used (not safe:"), proc.stderr
