"""alley's speed against named baselines (medians of alternating runs, printed as ratios).

  (a) cache-hit launch overhead: `alley x.allexe` vs exec of the cached static binary itself
      (goal: at most 15 ms median overhead);
  (b) Lua 5.4's interpreter (Debian's lua5.4 source, compiled by Debian's clang-14) running a
      small script: alley's cold JIT path (empty cache) and warm JIT path (objects cached) vs
      `lli-14 -jit-kind=mcjit` and `lli-14 -jit-kind=orc-lazy` on the same bitcode
      (goal: cold not slower than orc-lazy);
  (c) the in-process JIT vs the exec path for gnu allexes, small (hello) and medium (Lua),
      start-up and total time: what decides alley's default.

    .venv/bin/python bench/bench_alley.py [-runs N] [-only a|b|c]
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import Command, measure, median_difference, ms, print_table

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORK = ROOT / "build" / "bench-alley"
CLANG, LLVM_LINK, LLI = "/usr/bin/clang-14", "/usr/bin/llvm-link-14", "/usr/bin/lli-14"
GNU_TRIPLE = "x86_64-unknown-linux-gnu"
# Debian's Lua build without readline. No computed-goto dispatch: lli-14 -jit-kind=orc-lazy
# crashes on the blockaddress constants of lvm.c's jump table.
LUA_FLAGS = ["-O2", "-DLUA_COMPAT_5_3", "-DLUA_USE_POSIX", "-DLUA_USE_DLOPEN",
             "-DLUA_USE_JUMPTABLE=0"]

HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'
# A small script exercising the interpreter's main paths: calls, tables, strings, closures.
BENCH_LUA = """
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local t = {}
for i = 1, 20000 do t[i] = (i * 7919) % 10007 end
table.sort(t)
local parts = {}
for i = 1, 2000 do parts[#parts + 1] = string.format("%d:%x", i, t[i]) end
local s = table.concat(parts, ",")
local count = 0
for _ in s:gmatch("%d+:") do count = count + 1 end
print(fib(22), t[1], t[#t], #s, count)
"""


def tool(name: str) -> str:
    return str(BIN / name)


def run(cmd: list, **kwargs) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def cache_env(cache: Path) -> dict[str, str]:
    """This environment with its own cache, and Python's bytecode cache on, as for users
    (without it alley's modules are compiled from source on every start)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "ALLVM_CACHE_DIR": str(cache)}


def emptied(cache: Path):
    """A `before` hook: the run starts with an empty cache (a cold JIT path)."""
    return lambda: shutil.rmtree(cache, ignore_errors=True)


def bc2allvm(out: Path, main: Path, *libs: Path) -> Path:
    if not out.exists():
        run([tool("bc2allvm"), main, *libs, "-o", out])
    return out


def build_hello(target: str) -> Path:
    """A tiny C program as an allexe for `target` (bundled clang)."""
    src = WORK / "hello.c"
    src.write_text(HELLO_C)
    bc = WORK / f"hello-{target}.bc"
    if not bc.exists():
        sys.path.insert(0, str(ROOT))
        from allvm.toolchain import zig_command, zig_env

        run(zig_command("cc", "-target", target, "-O2", "-c", "-emit-llvm", str(src), "-o",
                        str(bc)), env=zig_env())
    return bc2allvm(WORK / f"hello-{target}.allexe", bc)


def build_lua() -> tuple[Path, Path, Path]:
    """Lua's interpreter by clang-14: (one llvm-link-14'd module for lli, the same module as an
    allexe, and an allexe with one module per source file)."""
    sys.path.insert(0, str(ROOT))
    from allvm.packaging.debian import fetch_source

    src = Path(fetch_source("lua5.4", str(ROOT / "build" / "bench-src"))) / "src"
    out = WORK / "lua"
    out.mkdir(parents=True, exist_ok=True)
    # Debian's build generates this header (the multiarch library directory).
    (out / "lua5.4-deb-multiarch.h").write_text('#define DEB_HOST_MULTIARCH "x86_64-linux-gnu"\n')
    sources = sorted(p for p in src.glob("*.c") if p.stem != "luac")
    bitcode = []
    for c in sources:
        bc = out / f"{c.stem}.bc"
        if not bc.exists():
            run([CLANG, "-target", GNU_TRIPLE, *LUA_FLAGS, "-I", out, "-c", "-emit-llvm", c,
                 "-o", bc])
        bitcode.append(bc)
    linked = out / "lua-linked.bc"
    if not linked.exists():
        run([LLVM_LINK, *bitcode, "-o", linked])
    main = out / "lua.bc"
    libs = [bc for bc in bitcode if bc != main]
    return (linked, bc2allvm(WORK / "lua.allexe", linked),
            bc2allvm(WORK / "lua-modules.allexe", main, *libs))


def module_count(allexe: Path) -> int:
    from allvm.allexe import Allexe

    return len(Allexe.open(str(allexe)).modules)


def cache_hit_overhead(runs: int) -> None:
    for target in ("x86_64-linux-musl", "x86_64-linux-gnu"):
        allexe = build_hello(target)
        cache = WORK / f"cache-static-{target}"
        emptied(cache)()
        run([tool("allready"), allexe], env=cache_env(cache), stdout=subprocess.DEVNULL)
        (binary,) = (cache / "static_binaries").iterdir()
        results = measure([Command("static binary", [str(binary)]),
                           Command("alley (cache hit)", [tool("alley"), str(allexe)],
                                   env=cache_env(cache))], runs=runs)
        print_table(f"(a) cache-hit launch, hello for {target}", results,
                    baseline="static binary")
        overhead = median_difference(results[1], results[0])
        print(f"  alley's launch overhead: {ms(overhead)} ms median (goal <= 15 ms)")


def lua_script() -> Path:
    script = WORK / "bench.lua"
    script.write_text(BENCH_LUA)
    return script


def lua_commands(linked: Path, lua: Path, modules: Path, script: Path) -> list[Command]:
    cold, warm = WORK / "cache-lua-cold", WORK / "cache-lua-warm"
    cold_exec, warm_exec = WORK / "cache-lua-cold-exec", WORK / "cache-lua-warm-exec"
    cold_modules = WORK / "cache-lua-cold-modules"
    for cache, flags in ((warm, []), (warm_exec, ["-jit=exec"])):
        run([tool("alley"), *flags, lua, script], env=cache_env(cache), stdout=subprocess.DEVNULL)
    return [
        Command("lli-14 orc-lazy", [LLI, "-jit-kind=orc-lazy", str(linked), str(script)]),
        Command("lli-14 mcjit", [LLI, "-jit-kind=mcjit", str(linked), str(script)]),
        Command("alley cold", [tool("alley"), str(lua), str(script)], env=cache_env(cold),
                before=emptied(cold)),
        Command(f"alley cold, {module_count(modules)} modules",
                [tool("alley"), str(modules), str(script)],
                env=cache_env(cold_modules), before=emptied(cold_modules)),
        Command("alley cold -jit=exec", [tool("alley"), "-jit=exec", str(lua), str(script)],
                env=cache_env(cold_exec), before=emptied(cold_exec)),
        Command("alley warm", [tool("alley"), str(lua), str(script)], env=cache_env(warm)),
        Command("alley warm -jit=exec", [tool("alley"), "-jit=exec", str(lua), str(script)],
                env=cache_env(warm_exec)),
    ]


def lua_vs_lli(runs: int) -> None:
    linked, lua, modules = build_lua()
    results = measure(lua_commands(linked, lua, modules, lua_script()), runs=runs)
    print_table("(b) Lua 5.4 interpreter + bench.lua: alley's JIT path vs lli-14", results,
                baseline="lli-14 orc-lazy")


def inprocess_vs_exec(runs: int) -> None:
    """Start-up (hello) and total time (Lua) of the two ways to run a gnu allexe."""
    _, lua, _ = build_lua()
    programs = [("hello", build_hello("x86_64-linux-gnu"), []),
                ("Lua", lua, [str(lua_script())])]
    for name, allexe, args in programs:
        commands = []
        for mode in ("inprocess", "exec"):
            warm, cold = WORK / f"cache-{name}-{mode}-warm", WORK / f"cache-{name}-{mode}-cold"
            argv = [tool("alley"), f"-jit={mode}", str(allexe), *args]
            run(argv, env=cache_env(warm), stdout=subprocess.DEVNULL)
            commands += [Command(f"warm -jit={mode}", argv, env=cache_env(warm)),
                         Command(f"cold -jit={mode}", argv, env=cache_env(cold),
                                 before=emptied(cold))]
        results = measure(commands, runs=runs)
        print_table(f"(c) {name} (gnu): in-process JIT vs exec path", results,
                    baseline="warm -jit=exec")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-runs", type=int, default=5)
    parser.add_argument("-only", choices=("a", "b", "c"))
    options = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    for key, bench in (("a", cache_hit_overhead), ("b", lua_vs_lli), ("c", inprocess_vs_exec)):
        if options.only in (None, key):
            bench(options.runs)


if __name__ == "__main__":
    main()
