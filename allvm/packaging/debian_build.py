"""`allvm-debian build`: any Debian source package into allexes, with no recipe of ours.

For each source package: `apt-get source` (bookworm's deb-src, allvm.packaging.debian) and
`apt-get build-dep` (what it installed is reported); `dpkg-buildpackage -B -uc -us` (`-b`
when every binary package is `Architecture: all`) with allvm-py's compiler wrappers under
every name a build may call (`cc`, `gcc`, `c++`, `g++`, `x86_64-linux-gnu-gcc`/`-g++`,
`clang`/`clang++`, and `CC`/`CXX`) and
`DEB_BUILD_OPTIONS=nostrip` (the programs keep their `.llvm_bc` section); then every ELF
executable of the built .debs becomes `OUT/PKG/allexes/<program>.allexe` (extracted from the
unpacked .debs, the package's own shared libraries as IR modules inside), and the package's
shared libraries are recorded as IR (`OUT/PKG/libs/<library>.bc`). The package's own
build-time tests (what `dh_auto_test`, or the package's override of it, runs) are run three
times: natively, and with every built program in the build tree replaced by alley's stub
for its allexe, on the JIT path and on the static path (allvm.packaging.package_tests).

**The target is the gnu triple against Debian's own libraries** (`x86_64-linux-gnu`). A
package's build-dependencies are glibc libraries and headers, so its native build and tests
work as Debian's do (a dynamic musl program would need `/lib/ld-musl-x86_64.so.1`, which a
glibc host lacks), and debhelper's `-dumpmachine` question gets Debian's answer. The package's
own code — programs and its own shared libraries — is IR in the allexes; Debian's libraries
without bitcode stay native and are recorded in main.bc's `!llvm.dependent-libraries`, linked
dynamically as glibc is (allvm.packaging.wllvm).

Results: `OUT/PKG/report.json` (report_fields) and `OUT/report.md` (allvm.packaging.
debian_report). The package's log is `OUT/PKG/build.log`.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from allvm.elf import Elf
from allvm.errors import AllvmError
from allvm.packaging.debian import fetch_source
from allvm.packaging.wrapper import HOST_INCLUDE_DIRS, HOST_LIBRARY_DIRS
from allvm.toolchain import GNU_TARGET

TARGET = GNU_TARGET
C_NAMES = ("cc", "gcc", "x86_64-linux-gnu-gcc", "clang")
CXX_NAMES = ("c++", "g++", "x86_64-linux-gnu-g++", "clang++")
C_SUFFIXES = (".c",)  # sources, not headers: a C++ package has .h files too
CXX_SUFFIXES = (".cc", ".cpp", ".cxx", ".c++", ".C")
BUILD_TIMEOUT = 3 * 3600
TEST_TIMEOUT = 3600
APT_LOCK_WAIT = "DPkg::Lock::Timeout=900"
BIN = Path(sys.executable).parent
SYSTEM_PATH = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


class PackageError(AllvmError):
    """A package that cannot be built into allexes; the message is one line."""


class SourceUnavailable(PackageError):
    """The index names the source package but the mirror does not serve its files (a 404, as
    for a version superseded since the last `apt-get update`): not a build failure."""


def say(package: str, message: str) -> None:
    print(f"[{package}] {message}", flush=True)


# --- source, build-dependencies ------------------------------------------------------------

def resolve(name: str) -> tuple[str, str]:
    """(source package, version) for a source or binary package name."""
    proc = subprocess.run(["apt-cache", "showsrc", name], capture_output=True, text=True)
    source = re.search(r"^Package: (\S+)", proc.stdout, re.M)
    version = re.search(r"^Version: (\S+)", proc.stdout, re.M)
    if proc.returncode != 0 or not source or not version:
        raise PackageError(f"{name}: unknown package (no source package of that name in "
                           "bookworm's deb-src)")
    return source[1], version[1]


def languages(tree: Path) -> list[str]:
    """The languages of the package's code that become IR: C and/or C++ (by file names)."""
    found = set()
    for _root, dirs, files in os.walk(tree):
        dirs[:] = [d for d in dirs if d not in (".git", ".pc", "debian")]
        for f in files:
            if f.endswith(CXX_SUFFIXES):
                found.add("C++")
            elif f.endswith(C_SUFFIXES):
                found.add("C")
    return sorted(found)


def install_build_deps(source: str, log: Path) -> list[str]:
    """`apt-get build-dep -y`; the packages it installed (once per machine: later runs
    install nothing)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", "build-dep", "-y", "-q", "-o", APT_LOCK_WAIT, source],
                          capture_output=True, text=True, env=env)
    with open(log, "a") as f:
        f.write(f"$ apt-get build-dep -y {source}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:  # say why, and where: on a cluster, the worker's machine
        errors = [line for line in proc.stderr.splitlines() if line.startswith("E: ")]
        why = ("not root, and installing build-dependencies needs root" if os.geteuid() != 0
               else errors[-1] if errors else f"exit {proc.returncode}")
        raise PackageError(f"apt-get build-dep {source} failed on {socket.gethostname()}: "
                           f"{why} (see {log})")
    listed = re.search(r"^The following NEW packages will be installed:\n((?:  .*\n)+)",
                       proc.stdout, re.M)
    return listed[1].split() if listed else []


# --- build ------------------------------------------------------------------------------------

def make_compilers(directory: Path) -> Path:
    """A directory of the wrappers under every compiler name a build may use, each for the
    gnu target."""
    directory.mkdir(parents=True, exist_ok=True)
    for names, tool in ((C_NAMES, "allcc"), (CXX_NAMES, "allc++")):
        for name in names:
            path = directory / name
            path.write_text(f'#!/bin/sh\nALLVM_CC_TARGET={TARGET} exec "{BIN / tool}" "$@"\n')
            path.chmod(0o755)
    return directory


def build_env(compilers: Path, jobs: int, *, check: bool) -> dict[str, str]:
    """The build's and the tests' environment. PATH: the wrappers, then the system's
    directories as in Debian's own build environment (sbuild's, without /usr/local), then
    allvm-py's tools last. Not the caller's PATH: a virtualenv's or pyenv's `python3` (and
    `pytest`, `pip`...) would shadow Debian's, without the Debian modules a package's tests
    import (ucspi-tcp's suite needs python3-netifaces)."""
    options = ["nostrip", f"parallel={jobs}"] + ([] if check else ["nocheck"])
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    # CMake learns the multiarch directories (CMAKE_LIBRARY_ARCHITECTURE) from gcc's
    # implicit link directories; zig's link line names none, so find_library would miss
    # /usr/lib/x86_64-linux-gnu (galera-3: Boost's program_options, pthread, rt): name them.
    for variable, dirs in (("CMAKE_LIBRARY_PATH", HOST_LIBRARY_DIRS),
                           ("CMAKE_INCLUDE_PATH", HOST_INCLUDE_DIRS[:1])):
        env[variable] = os.pathsep.join([*dirs, *filter(None, [env.get(variable)])])
    # The package's shared libraries become IR in the allexes; built against zig's libc++,
    # a C++ library also exports what libc++ does (operator new and delete), which Debian's
    # symbols file, a record of its libstdc++ build's ABI, does not list. That ABI check
    # (dh_makeshlibs' dpkg-gensymbols, tinyxml2's `-c4`: new symbols fail) says nothing of
    # this build: it reports, never fails (the variable overrides -c).
    env["DPKG_GENSYMBOLS_CHECK_LEVEL"] = "0"
    # gnulib's configure refuses to run as root (coreutils) unless told; Debian's builders
    # build as a user, allvm-debian as root (apt-get build-dep needs it).
    env["FORCE_UNSAFE_CONFIGURE"] = "1"
    # Debian's profile for no multilib packages (zlib's lib32z1 is built with `gcc -m32`): the
    # wrappers compile for x86_64 only, and allexes are of this architecture's programs.
    env["DEB_BUILD_PROFILES"] = " ".join(dict.fromkeys(
        [*env.get("DEB_BUILD_PROFILES", "").split(), "nobiarch"]))
    env.update(PATH=os.pathsep.join([str(compilers), *SYSTEM_PATH, str(BIN)]),
               CC=str(compilers / "gcc"), CXX=str(compilers / "g++"),
               DEB_BUILD_OPTIONS=" ".join(options), ALLVM_CC_TARGET=TARGET, LC_ALL="C.UTF-8")
    return env


def run_logged(command: list[str], cwd: Path, env: dict, log: Path, timeout: int) -> int:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        try:
            return subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write(f"allvm-debian: timed out after {timeout} s\n")
            return 124


def binary_option(tree: Path) -> str:
    """`-B` (the architecture-dependent packages only) when the source has any: an
    `Architecture: all` package holds no program of this machine, and its build may need
    what the wrappers are not (gzip-win32: a MinGW cross-compiler); else `-b`."""
    control = (tree / "debian" / "control").read_text(errors="replace")
    kinds = re.findall(r"^Architecture:\s*(.+)$", control, re.M)
    return "-B" if any(kind.split() != ["all"] for kind in kinds) else "-b"


def build(tree: Path, env: dict, log: Path) -> float:
    """dpkg-buildpackage in the tree (tests deferred: they run afterwards, timed, per mode)."""
    started = time.monotonic()
    status = run_logged(["dpkg-buildpackage", binary_option(tree), "-uc", "-us"], tree, env, log,
                        BUILD_TIMEOUT)
    if status != 0:
        failed = PackageError(f"the build failed (exit {status}; see {log})")
        failed.details = first_errors(log.read_text(errors="replace"))
        raise failed
    return time.monotonic() - started


# A compiler's, linker's or CMake's error line; not the lines of make, debhelper and dpkg that
# only say that something below them failed, nor a configure probe's expected failure.
_ERROR = re.compile(r"(\berror: |^CMake Error|undefined reference|\bcannot find -l|"
                    r"No such file or directory$)")
_ONLY_RELAYS = re.compile(r"^(make|gmake)(\[\d+\])?: \*\*\*|^dh_\w+: error|"
                          r"^dpkg-buildpackage: error|--error-limit|CMakeScratch|conftest")


def first_errors(text: str, count: int = 3) -> list[str]:
    """The first error lines of a build log (the reason, for the report), at most `count`."""
    found = []
    lines = [line.strip() for line in text.splitlines()]
    for i, line in enumerate(lines):
        if _ERROR.search(line) and not _ONLY_RELAYS.search(line) and line not in found:
            if line.startswith("CMake Error") and i + 1 < len(lines):  # its message: below
                line = f"{line} {lines[i + 1]}"
            found.append(line[:300])
            if len(found) == count:
                break
    return found


# --- what the .debs hold ----------------------------------------------------------------------

def unpack_debs(debs: list[Path], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, capture_output=True)


_ET_EXEC, _ET_DYN, _PT_INTERP = 2, 3, 3


def elf_kind(path: Path) -> str | None:
    """'executable' (also a PIE: it has an interpreter), 'library', or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or len(head) < 64:
                return None
            e_type = int.from_bytes(head[16:18], "little")
            phoff = int.from_bytes(head[32:40], "little")
            phentsize = int.from_bytes(head[54:56], "little")
            phnum = int.from_bytes(head[56:58], "little")
            f.seek(phoff)
            headers = f.read(phentsize * phnum)
    except OSError:
        return None
    interp = any(int.from_bytes(headers[i:i + 4], "little") == _PT_INTERP
                 for i in range(0, len(headers), phentsize or 1))
    if e_type == _ET_EXEC or (e_type == _ET_DYN and interp):
        return "executable"
    return "library" if e_type == _ET_DYN else None


def elf_files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, list[Path]]:
    """The regular ELF files below root by kind (symbolic links not followed)."""
    found: dict[str, list[Path]] = {"executable": [], "library": []}
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if os.path.join(directory, d) not in skip)
        for name in sorted(files):
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            kind = elf_kind(path)
            if kind:
                found[kind].append(path)
    return found


def section(path: Path, name: str = ".llvm_bc") -> bytes | None:
    try:
        return Elf(path.read_bytes(), str(path)).section(name)
    except (AllvmError, OSError):
        return None


def binary_packages(tree: Path) -> list[str]:
    """The binary packages debian/control names (their staging directories are debian/NAME)."""
    control = (tree / "debian" / "control").read_text(errors="replace")
    return re.findall(r"^Package:\s*(\S+)", control, re.M)


def library_dirs(root: Path, libraries: list[Path]) -> list[str]:
    """The unpacked packages' library directories, searched before the system's."""
    return list(dict.fromkeys(str(p.parent) for p in libraries))


def clean_work(out: Path, keep: bool) -> None:
    """The package's output directory, emptied of an earlier run's results."""
    for name in ("allexes", "libs", "root", "bin", "cache-jit", "cache-static", "scratch",
                 "compilers", "report.json", "build.log", "stub", *(() if keep else ("src",))):
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def fetch(source: str, out: Path) -> Path:
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    try:
        return Path(fetch_source(source, str(src)))
    except AllvmError as e:
        missing = re.search(r"Failed to fetch (\S+)\s+(\d{3}[^\[]*)", str(e))
        if missing:
            raise SourceUnavailable(f"{source}: source unavailable from the mirror "
                                    f"({' '.join(missing[2].split())}: {missing[1]})") from None
        raise
