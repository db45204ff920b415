"""Where the bundled clang/lld (the `ziglang` package) is and how it is called.

zig finds its global cache through HOME/XDG and fails without them, so every zig subprocess gets
one fixed cache directory inside this install (found without HOME, warmed by `make`), in the
subprocess's environment only: the user program's environment is never touched.
"""

import os
import subprocess
import sys

from allvm.errors import AllvmError

MUSL_TARGET = "x86_64-linux-musl"
GNU_TARGET = "x86_64-linux-gnu"


def zig_cache_dir() -> str:
    return os.environ.get("ALLVM_ZIG_CACHE_DIR") or os.path.join(sys.prefix, "var", "zig-cache")


def zig_env() -> dict[str, str]:
    env = dict(os.environ)
    cache = zig_cache_dir()
    env["ZIG_GLOBAL_CACHE_DIR"] = cache
    env["ZIG_LOCAL_CACHE_DIR"] = cache
    return env


def zig_command(subcommand: str, *args: str) -> list[str]:
    """The command line for `zig <subcommand> args...` through the installed package."""
    return [sys.executable, "-m", "ziglang", subcommand, *args]


def run_zig(subcommand: str, args: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run zig; a failure becomes an AllvmError naming `what` with zig's own message."""
    proc = subprocess.run(zig_command(subcommand, *args), env=zig_env(), capture_output=True,
                          text=True, **kwargs)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise AllvmError(f"{what} failed: {detail}")
    return proc


def warm_musl() -> None:
    """Make zig build its musl once (about a minute), so no user command pays for it later."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="allvm-warm-") as tmp:
        src = os.path.join(tmp, "warm.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        run_zig("cc", ["-target", MUSL_TARGET, "-static", "-O2", src, "-o",
                       os.path.join(tmp, "warm")], "warming zig's musl")


if __name__ == "__main__":
    warm_musl()
