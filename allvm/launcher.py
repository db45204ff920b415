"""alley's native launcher (allvm/launcher.c): built with the bundled zig and installed as `alley`.

The launcher answers a cache hit without starting Python and hands everything else to the
Python alley (`python -m allvm.tools.alley`). It is built by the set-up (`make`), and on first
use when missing or out of date (a pip install without make), in place of the `alley` script
that pip installs; `alley-binfmt` beside it is the name binfmt_misc starts it under. A copy of
it under another name is a stub (`install_stub`): it runs the allexe beside it under the
caller's argv[0], the way a program is installed without binfmt_misc, in one exec.

The formats it shares with the Python side (cache key, entry layout, zip limits) are defined
once, in allvm/cache.py and allvm/allexe.py: their constants are compiled into it from there.
"""

import os
import sys
from _blake2 import blake2b

from allvm import allexe, bitcode, cache, execute
from allvm.errors import AllvmError
from allvm.native import settings

SOURCE = os.path.join(os.path.dirname(__file__), "launcher.c")
BINFMT_NAME = "alley-binfmt"
# The module that builds a program's optimized binary in the background (allvm/native/).
PROMOTER = "allvm.native.promote"
# Searched for in an installed `alley`: which build of the launcher it is.
_BUILD_MARK = b"allvm-launcher-build "


def definitions() -> dict[str, str | bytes | int | tuple]:
    """What the C source takes from the Python side (see allvm/cache.py)."""
    return {
        "ALLVM_PYTHON": sys.executable,
        "ALLVM_CODEGEN_ID": cache.CODEGEN_ID,
        "ALLVM_CPU_VARIABLE": settings.CPU_VARIABLE,
        "ALLVM_CARRY_VARIABLE": settings.CARRY_VARIABLE,
        "ALLVM_KEY_DIGEST_SIZE": cache.KEY_DIGEST_SIZE,
        "ALLVM_SEAL_DIGEST_SIZE": cache.SEAL_DIGEST_SIZE,
        "ALLVM_SEAL_MAGIC": cache.SEAL_MAGIC.decode(),
        "ALLVM_STATIC_BINARIES": cache.STATIC_BINARIES,
        "ALLVM_LAUNCH_RECORDS": cache.LAUNCH_RECORDS,
        "ALLVM_CACHE_DIRECTORIES": cache.DIRECTORIES,
        "ALLVM_SYSTEM_CACHE": cache.SYSTEM_CACHE,
        "ALLVM_BINFMT_NAME": BINFMT_NAME,
        "ALLVM_INTERIM_TAG": cache.INTERIM_TAG,
        "ALLVM_PROMOTER": PROMOTER,
        "ALLVM_RECORD_SETTLE_SECONDS": cache.RECORD_SETTLE_SECONDS,
        "ALLVM_MAIN_MODULE": allexe.MAIN_MODULE,
        "ALLVM_BITCODE_MAGIC": bitcode.MAGIC,
        "ALLVM_BITCODE_WRAPPER_MAGIC": bitcode.WRAPPER_MAGIC,
        "ALLVM_MAX_MODULES": allexe.MAX_MODULES,
        "ALLVM_DEFAULT_SIZE_LIMIT": allexe.DEFAULT_SIZE_LIMIT,
        "ALLVM_LOADER_PREFIX": execute.LOADER_PREFIX,
        "ALLVM_HIDDEN_PREFIX": execute.HIDDEN_PREFIX,
    }


def build_id() -> str:
    """Changes with the source, what is compiled into it, and the compiler."""
    from allvm.toolchain import zig_binary

    h = blake2b(digest_size=12)
    with open(SOURCE, "rb") as f:
        h.update(f.read())
    h.update(repr(sorted(definitions().items())).encode())
    zig = os.stat(zig_binary())
    h.update(f"{zig.st_size} {zig.st_mtime_ns}".encode())
    return h.hexdigest()


def launcher_path() -> str:
    """Where the launcher is installed: this install's `alley`, named by every allexe's #!."""
    return allexe.alley_path()


def is_current(path: str | None = None) -> bool:
    """Whether `path` (the installed alley) is the launcher built from today's source."""
    try:
        with open(path or launcher_path(), "rb") as f:
            return _BUILD_MARK + build_id().encode() in f.read()
    except OSError:
        return False


def define_flags() -> list[str]:
    """The compiler's -D flags that give the C source the Python side's constants (the
    launcher's build, and the fuzzer's: fuzz/build_launcher_fuzzer.py)."""
    return [f"-D{name}={_c_value(value)}" for name, value in definitions().items()]


def _c_value(value: str | bytes | int | tuple) -> str:
    if isinstance(value, tuple):
        return "{" + ", ".join(map(_c_value, value)) + "}"
    if isinstance(value, int):
        return f"{value}ULL" if value > 0xFFFF else str(value)
    if isinstance(value, bytes):
        return '"' + "".join(f"\\x{b:02x}" for b in value) + '"'
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build(output: str) -> None:
    """Compile the launcher into `output` (static musl, stripped)."""
    from allvm.toolchain import MUSL_TARGET, run_zig

    defines = define_flags()
    mark = (_BUILD_MARK + build_id().encode()).decode()
    run_zig("cc", ["-target", MUSL_TARGET, "-static", "-O2", "-s", "-std=c11", "-Wall",
                   "-Werror", *defines, f'-DALLVM_BUILD_MARK="{mark}"', SOURCE, "-o", output],
            "building alley's native launcher", cwd="/")


def install() -> str:
    """Build the launcher and put it in place of `alley` (atomically); its path."""
    path = launcher_path()
    directory = os.path.dirname(path)
    temp = os.path.join(directory, f".alley-{os.getpid()}.tmp")
    try:
        build(temp)
        os.chmod(temp, 0o755)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    _link_binfmt_name(directory)
    return path


def _link_binfmt_name(directory: str) -> None:
    """`alley-binfmt` -> `alley`: the launcher reads binfmt_misc's argv by that name."""
    link = os.path.join(directory, BINFMT_NAME)
    if os.path.islink(link) and os.readlink(link) == "alley":
        return
    temp = f"{link}.{os.getpid()}.tmp"
    os.symlink("alley", temp)
    os.replace(temp, link)


def install_stub(program: str) -> None:
    """Make `program` (a new file) the launcher's stub for `program.allexe`: run by any name,
    also through a symlink, it starts that allexe with the caller's argv[0]. A copy, so that
    the stub stays what it is when alley is rebuilt, and is as new as the moment it was made.
    Hard links to it are stubs too, each for the allexe beside it."""
    import shutil

    if not ensure_installed():
        raise AllvmError(f"alley's native launcher is not built (run `python -m {__name__}`)")
    with open(launcher_path(), "rb") as launcher, open(program, "xb") as stub:
        try:
            shutil.copyfileobj(launcher, stub)
            os.fchmod(stub.fileno(), 0o755)
        except BaseException:
            os.unlink(program)
            raise


def ensure_installed() -> bool:
    """Install the launcher if the installed alley is not the current one; whether it is now.

    Called by the Python alley, so an install without `make` gets it on first use. An install
    directory that cannot be written, or a failed build, leaves the Python alley in place.
    """
    if is_current():
        return True
    try:
        install()
    except (OSError, AllvmError):
        return False
    return True


if __name__ == "__main__":
    print(f"alley's native launcher: {install()}")
