"""`make demo`: build the example C programs into allexes, end to end, showing each command."""

import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(os.path.dirname(HERE), "build", "demo")
BIN = os.path.dirname(sys.executable)

# name -> (main source, library sources)
PROGRAMS = {
    "wc": ("wc.c", []),
    "cksum": ("cksum.c", []),
    "nbody": ("nbody.c", []),
    "stats": ("stats/main.c", ["stats/libstats.c"]),
}


def show(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Print a command as a user would type it, run it, and stop the demo if it fails."""
    print("$ " + " ".join(shlex.quote(os.path.relpath(c) if os.path.isabs(c) else c)
                          for c in cmd), flush=True)
    proc = subprocess.run(cmd, **kwargs)
    if proc.returncode != 0:
        sys.exit(f"demo: command failed with status {proc.returncode}")
    return proc


def tool(name: str) -> str:
    return os.path.join(BIN, name)


def compile_to_bitcode(source: str) -> str:
    from allvm.toolchain import MUSL_TARGET, zig_command, zig_env

    out = os.path.join(BUILD, os.path.basename(source).replace(".c", ".bc"))
    if source.startswith("stats/"):
        out = os.path.join(BUILD, "stats-" + os.path.basename(out))
    show(zig_command("cc", "-target", MUSL_TARGET, "-O2", "-c", "-emit-llvm",
                     os.path.join(HERE, source), "-o", out), env=zig_env())
    return out


def build_allexe(name: str, main_source: str, lib_sources: list[str]) -> str:
    main_bc = compile_to_bitcode(main_source)
    libs = [compile_to_bitcode(s) for s in lib_sources]
    allexe = os.path.join(BUILD, f"{name}.allexe")
    show([tool("bc2allvm"), main_bc, *libs, "-o", allexe, "-f"])
    show([tool("all-info"), allexe])
    return allexe


def main() -> None:
    os.makedirs(BUILD, exist_ok=True)
    print("== Building the examples into allexes ==")
    for name, (main_source, libs) in PROGRAMS.items():
        build_allexe(name, main_source, libs)
        print()


if __name__ == "__main__":
    main()
