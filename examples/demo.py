"""`make demo`: build the example C programs into allexes, end to end, showing each command."""

import os
import shlex
import shutil
import subprocess
import sys
import time

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


# name -> (arguments, standard input) for a run of each example
RUNS = {
    "wc": ([os.path.join(HERE, "wc.c")], None),
    "cksum": ([os.path.join(HERE, "cksum.c")], None),
    "nbody": (["200000"], None),
    "stats": ([], " ".join(str(i * 7 % 100) for i in range(1000))),
}


def timed(cmd: list[str], env: dict, stdin: str | None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd)} failed: {proc.stderr.strip()}")
    return elapsed, proc.stdout


def demo_alley() -> None:
    """Each example through alley: a first run from the fast tier and the next start; the JIT
    path (tier optimized: nothing built in the background) cold and warm; -force-static; a
    cache hit."""
    print("== Running the examples through alley (fresh caches in build/demo) ==")
    cache, tiers = os.path.join(BUILD, "cache"), os.path.join(BUILD, "cache-tiers")
    for directory in (cache, tiers):
        shutil.rmtree(directory, ignore_errors=True)
    env = dict(os.environ, ALLVM_CACHE_DIR=cache, ALLVM_TIER="optimized")
    tier_env = dict(os.environ, ALLVM_CACHE_DIR=tiers)
    rows = []
    for name, (args, stdin) in RUNS.items():
        allexe = os.path.join(BUILD, f"{name}.allexe")
        print(f"$ alley {os.path.relpath(allexe)} " + " ".join(
            shlex.quote(os.path.relpath(a) if os.path.isabs(a) else a) for a in args))
        first, out = timed([tool("alley"), allexe, *args], tier_env, stdin)
        print(out, end="")
        second, _ = timed([tool("alley"), allexe, *args], tier_env, stdin)
        cold, _ = timed([tool("alley"), allexe, *args], env, stdin)
        warm, _ = timed([tool("alley"), allexe, *args], env, stdin)
        static, _ = timed([tool("alley"), "-force-static", allexe, *args], env, stdin)
        hit, _ = timed([tool("alley"), allexe, *args], env, stdin)
        rows.append((name, first, second, cold, warm, static, hit))
    titles = ("first run", "next run", "cold JIT", "warm JIT", "-force-static", "cached static")
    widths = [max(len(t), 7) for t in titles]
    print(f"\n{'program':8} " + " ".join(f"{t:>{w + 2}}" for t, w in zip(titles, widths,
                                                                          strict=True)))
    for name, *times in rows:
        print(f"{name:8} " + " ".join(f"{t * 1000:{w}.0f}ms"
                                      for t, w in zip(times, widths, strict=True)))
    print("(first run: the fast tier compiles, runs, and has the optimized binary built in the "
          "background; next run: already a cache hit;\n cold/warm JIT: the JIT path with "
          "ALLVM_TIER=optimized, compiling every module / objects cached, link only;\n "
          "-force-static: build the static binary; cached static: alley execs it directly)\n")


def demo_alltogether() -> None:
    """The multi-module example merged into one whole program, then its size and speed against
    the unmerged allexe and a plain `zig cc -O2` build (bench/bench_alltogether.py)."""
    print("== alltogether: one program across the program/library line ==")
    allexe = os.path.join(BUILD, "stats.allexe")
    merged = os.path.join(BUILD, "stats.merged.allexe")
    show([tool("alltogether"), allexe, "-f"])
    show([tool("all-info"), merged])
    args, stdin = RUNS["stats"]
    show([tool("alley"), merged, *args], input=stdin, text=True)
    show([sys.executable, os.path.join(os.path.dirname(HERE), "bench", "bench_alltogether.py"),
          "stats"])
    print()


def demo_allmux() -> None:
    """The examples multiplexed into one allexe, run through symlinks named after them, then
    sizes and start-up against separate static and dynamic builds (bench/bench_allmux.py)."""
    print("== allmux: the examples as one multicall program ==")
    mux_dir = os.path.join(BUILD, "mux")
    os.makedirs(mux_dir, exist_ok=True)
    muxed = os.path.join(mux_dir, "examples.allexe")
    show([tool("allmux"), *(os.path.join(BUILD, f"{name}.allexe") for name in PROGRAMS),
          "-o", muxed, "-f"])
    show([tool("all-info"), muxed])
    env = dict(os.environ, ALLVM_CACHE_DIR=os.path.join(BUILD, "cache"))
    for name, (args, stdin) in RUNS.items():
        link = os.path.join(mux_dir, name)
        if not os.path.lexists(link):
            show(["ln", "-s", "examples.allexe", link])
        show([link, *args], input=stdin, text=True, env=env)
    show([sys.executable, os.path.join(os.path.dirname(HERE), "bench", "bench_allmux.py"),
          "--runs", "5"])
    print()


def demo_binfmt() -> None:
    """A bare bitcode file run by the kernel (allvm-binfmt; root), then unregistered."""
    print("== Executable formats: bitcode run by the kernel ==")
    if os.geteuid() != 0:
        print("(skipped: allvm-binfmt register needs root)\n")
        return
    program = os.path.join(BUILD, "wc.bc")
    os.chmod(program, 0o755)
    prefix = ["-name-prefix", "allvmdemo"]  # names of the demo's own, removed afterwards
    show([tool("allvm-binfmt"), "register", *prefix])
    try:
        show([tool("allvm-binfmt"), "status", *prefix])
        show([program, os.path.join(HERE, "wc.c")],
             env=dict(os.environ, ALLVM_CACHE_DIR=os.path.join(BUILD, "cache")))
    finally:
        show([tool("allvm-binfmt"), "unregister", *prefix])
    print()


def main() -> None:
    os.makedirs(BUILD, exist_ok=True)
    print("== Building the examples into allexes ==")
    for name, (main_source, libs) in PROGRAMS.items():
        build_allexe(name, main_source, libs)
        print()
    demo_alley()
    demo_binfmt()
    demo_alltogether()
    demo_allmux()


if __name__ == "__main__":
    main()
