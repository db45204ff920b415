"""The figures of `make bench`. Each figure function builds what it needs, times it
with bench/common.py (alternating runs, medians), prints its tables as it goes, and returns
report records (dicts: see common.ratio_record and size_record below).

Figures 1 and 2 reuse bench_alley's builders, 4 and 5 bench_alltogether's and bench_allmux's;
figure 3 builds bzip2, Lua and sqlite3 from Debian source three ways (allcc → wllvm-extract →
allready; zig cc -O2 static; gcc -O2), from the same sources with the same flags.
"""

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "examples"), str(ROOT)]

import bench_alley  # noqa: E402
import bench_allmux  # noqa: E402
import bench_cluster  # noqa: E402
import bench_corpus_tests  # noqa: E402
import bench_launch  # noqa: E402
import bench_libc  # noqa: E402
import bench_platform_ir  # noqa: E402
from bench_alltogether import run, static_binary, static_binary_path, tool  # noqa: E402
from bench_alltogether import workload as example_workload  # noqa: E402
from common import Command, measure, print_table, ratio_record  # noqa: E402
from demo import BUILD as DEMO_BUILD  # noqa: E402
from demo import PROGRAMS as DEMO_PROGRAMS  # noqa: E402

from allvm.packaging.debian import fetch_source  # noqa: E402
from allvm.packaging.debian_list import load_list  # noqa: E402
from allvm.packaging.debian_package import build_package  # noqa: E402
from allvm.toolchain import GNU_TARGET, MUSL_TARGET, zig_command, zig_env  # noqa: E402
from corpus.results import LIST as CORPUS_LIST  # noqa: E402
from corpus.results import OUT as CORPUS_OUT  # noqa: E402

WORK = ROOT / "build" / "bench"
SOURCES = ROOT / "build" / "bench-src"
CACHE = WORK / "cache"
# Figure 5's other coreutils builds (gcc's dynamic one, allcc's --enable-single-binary) are
# not Debian's build, so allvm-debian makes neither: they are built here, from the same source.
COREUTILS_BUILD = ["FORCE_UNSAFE_CONFIGURE=1 ./configure --enable-install-program=arch "
                   "--disable-nls --without-selinux --without-openssl --without-gmp {extra}",
                   f"make -j{os.cpu_count() or 1} MAKEINFO=true"]
MERGE_PIPELINE = "constmerge,mergefunc,globaldce"


@dataclass
class Settings:
    quick: bool
    runs: int


def cache_env(cache: Path) -> dict[str, str]:
    return {**os.environ, "ALLVM_CACHE_DIR": str(cache)}


def size_record(figure: str, contender: str, contender_bytes: int, baseline: str,
                baseline_bytes: int, goal: str = "", goal_max: float | None = None,
                note: str = "", commands: tuple[str, str] = ("", "")) -> dict:
    """A size comparison: one measurement, so min = max = the ratio."""
    ratio = contender_bytes / baseline_bytes
    return {"figure": figure, "metric": "size", "contender": contender, "baseline": baseline,
            "ratio": ratio, "min": ratio, "max": ratio, "runs": 1,
            "contender_bytes": contender_bytes, "baseline_bytes": baseline_bytes,
            "contender_command": commands[0], "baseline_command": commands[1],
            "goal": goal, "met": None if goal_max is None else ratio <= goal_max, "note": note}


def by_label(results) -> dict:
    return {r.command.label: r for r in results}


# --- figure 1: alley's cache-hit start (bench_launch.py) -----------------------------------

def fig1_launch(s: Settings) -> list[dict]:
    return bench_launch.figure(s, corpus_allexes)


# --- figure 2: the JIT path against lli-14 ----------------------------------------------------

def fig2_jit(s: Settings) -> list[dict]:
    bench_alley.WORK.mkdir(parents=True, exist_ok=True)
    linked, lua, modules = bench_alley.build_lua()
    wanted = ("lli-14 orc-lazy", "lli-14 mcjit", "alley cold", "alley warm")
    commands = [c for c in bench_alley.lua_commands(linked, lua, modules, bench_alley.lua_script())
                if c.label in wanted]
    results = by_label(measure(commands, runs=s.runs))
    print_table("fig 2: Lua 5.4 (clang-14) + bench_alley's script: JIT path vs lli-14",
                list(results.values()), baseline="lli-14 orc-lazy")
    records = []
    for contender in ("alley cold", "alley warm"):
        for baseline in ("lli-14 orc-lazy", "lli-14 mcjit"):
            goal = ("≤ 1.0×", 1.0) if (contender, baseline) == ("alley cold",
                                                               "lli-14 orc-lazy") else ("", None)
            records.append(ratio_record("2 JIT (Lua)", results[contender], results[baseline],
                                        goal=goal[0], goal_max=goal[1]))
    return records


# --- figure 3: compute-heavy programs from Debian source -------------------------------------

@dataclass
class Program:
    name: str
    package: str
    prepare: Callable[[Path], tuple[list[Path], list[str]]]  # source tree -> sources, flags
    workload: Callable[[Settings], list[str]]  # the program's arguments
    libs: list[str] = field(default_factory=list)
    cxx: bool = False  # a C++ program: allc++, zig c++, g++

    @property
    def compilers(self) -> dict[str, str]:
        """The wrapper and the baselines' labels for this program's language."""
        if self.cxx:
            return {"allcc": "allc++", "zig": "zig c++ -O2 static", "gcc": "g++ -O2"}
        return {"allcc": "allcc", "zig": "zig cc -O2 static", "gcc": "gcc -O2"}


def bzip2_sources(tree: Path) -> tuple[list[Path], list[str]]:
    units = ["blocksort", "huffman", "crctable", "randtable", "compress", "decompress", "bzlib",
             "bzip2"]
    return [tree / f"{u}.c" for u in units], ["-D_FILE_OFFSET_BITS=64"]


def lua_sources(tree: Path) -> tuple[list[Path], list[str]]:
    # Debian's luaconf.h includes a header its build generates (the multiarch directory).
    include = WORK / "lua-include"
    include.mkdir(parents=True, exist_ok=True)
    (include / "lua5.4-deb-multiarch.h").write_text(
        '#define DEB_HOST_MULTIARCH "x86_64-linux-gnu"\n')
    sources = sorted(p for p in (tree / "src").glob("*.c") if p.stem != "luac")
    return sources, ["-DLUA_COMPAT_5_3", "-DLUA_USE_POSIX", "-I", str(include)]


def sqlite3_sources(tree: Path) -> tuple[list[Path], list[str]]:
    """The amalgamation and the shell, generated by sqlite's own build (tclsh, gcc for its
    generators); threads and extension loading off so the static musl link needs no more."""
    build = WORK / "sqlite3-amalgamation"
    if not (build / "shell.c").exists():
        build.mkdir(parents=True, exist_ok=True)
        run([str(tree / "configure"), "CC=gcc", "--disable-tcl"], cwd=build)
        run(["make", "-j2", "sqlite3.c", "shell.c"], cwd=build)
    return ([build / "sqlite3.c", build / "shell.c"],
            ["-DSQLITE_THREADSAFE=0", "-DSQLITE_OMIT_LOAD_EXTENSION", "-I", str(build)])


def bzip2_workload(s: Settings) -> list[str]:
    """A generated file (50 MB, QUICK 8 MB) of words and numbers: compressible, not trivially."""
    size = (8 if s.quick else 50) * 1024 * 1024
    path = WORK / f"bzip2-input-{size >> 20}M.txt"
    if not path.exists():
        rng = random.Random(6)
        words = ["allvm", "bitcode", "module", "static", "cache", "linker", "the", "of", "and",
                 "program", "library", "compile", "native", "binary", "run", "time"]
        with open(path, "w") as f:
            written = 0
            while written < size:
                line = " ".join(rng.choice(words) if rng.random() < 0.8 else
                                str(rng.randrange(1 << 30)) for _ in range(12)) + "\n"
                written += f.write(line * 1)
    return ["-c", str(path)]


LUA_SCRIPT = """-- bench/figures.py: calls, tables, strings, sorting, floats, objects.
local n = tonumber(arg[1]) or 1
local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end
local function sieve(m)
  local composite, count = {}, 0
  for i = 2, m do
    if not composite[i] then
      count = count + 1
      for j = i * i, m, i do composite[j] = true end
    end
  end
  return count
end
local function strings(m)
  local parts = {}
  for i = 1, m do parts[#parts + 1] = string.format("%d:%x", i, i * 7919 % 10007) end
  local s, total = table.concat(parts, ","), 0
  for _, hex in s:gmatch("(%d+):(%x+)") do total = total + #hex end
  return total
end
local function sorting(m)
  local t, x = {}, 42
  for i = 1, m do x = (x * 1103515245 + 12345) % 2147483648; t[i] = x end
  table.sort(t, function(a, b) return a > b end)
  return t[1]
end
local function orbit(m)
  local x, y, vx, vy = 1.0, 0.0, 0.0, 1.0
  for _ = 1, m do
    local r = math.sqrt(x * x + y * y)
    local a = -1.0 / (r * r * r)
    vx, vy = vx + a * x * 0.001, vy + a * y * 0.001
    x, y = x + vx * 0.001, y + vy * 0.001
  end
  return x + y
end
local Point = {}
Point.__index = Point
function Point.new(x, y) return setmetatable({x = x, y = y}, Point) end
function Point:add(o) return Point.new(self.x + o.x, self.y + o.y) end
local function objects(m)
  local p = Point.new(0, 0)
  for i = 1, m do p = p:add(Point.new(i % 7, i % 11)) end
  return p.x + p.y
end
for _ = 1, n do
  print(fib(27), sieve(1000000), strings(200000), sorting(200000), orbit(2000000),
        objects(1000000))
end
"""


def lua_workload(s: Settings) -> list[str]:
    script = WORK / "bench.lua"
    script.write_text(LUA_SCRIPT)
    return [str(script), "1" if s.quick else "3"]


SQL_WORKLOAD = """-- bench/figures.py: bulk insert, index, scans, group by, join, update.
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})
INSERT INTO t SELECT i, (i * 7919) % 10007, printf('name-%d', (i * 31) % 5003), (i % 1000) / 7.0
FROM s;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
SELECT count(*), sum(c), avg(a) FROM t WHERE b LIKE 'name-1%';
SELECT a, count(*), max(c) FROM t GROUP BY a ORDER BY 2 DESC, 1 LIMIT 5;
SELECT count(*), sum(x.c + y.c) FROM t x JOIN t y ON y.id = x.a + 1 WHERE y.c > 50;
SELECT b, count(*), group_concat(id) FROM (SELECT * FROM t ORDER BY c DESC, id LIMIT 20000)
GROUP BY b ORDER BY 2 DESC, b LIMIT 3;
UPDATE t SET c = c * 2 WHERE a % 3 = 0;
DELETE FROM t WHERE a % 5 = 0;
SELECT count(*), total(c), max(length(b)) FROM t;
"""


def sqlite3_workload(s: Settings) -> list[str]:
    sql = WORK / "workload.sql"
    sql.write_text(SQL_WORKLOAD.format(rows=200_000 if s.quick else 400_000))
    return [":memory:", f".read {sql}"]


def lzip_sources(tree: Path) -> tuple[list[Path], list[str]]:
    """lzip (C++), as its Makefile compiles it."""
    return sorted(tree.glob("*.cc")), ['-DPROGVERSION="1.23"']


def lzip_workload(s: Settings) -> list[str]:
    """Figure 3's bzip2 input, compressed at lzip's default level to stdout."""
    return bzip2_workload(s)


PROGRAMS = [
    Program("bzip2", "bzip2", bzip2_sources, bzip2_workload),
    Program("lua", "lua5.4", lua_sources, lua_workload, ["-lm"]),
    Program("sqlite3", "sqlite3", sqlite3_sources, sqlite3_workload, ["-lm"]),
    Program("lzip", "lzip", lzip_sources, lzip_workload, cxx=True),
]


def build_allexe(p: Program, sources: list[Path], flags: list[str]) -> Path:
    """allcc (allc++) -O2 each source, link with it, wllvm-extract the program's bitcode."""
    wrapper = tool(p.compilers["allcc"])
    out = WORK / "allcc" / p.name
    out.mkdir(parents=True, exist_ok=True)
    allexe = WORK / f"{p.name}.allexe"
    if allexe.exists():
        return allexe
    objects = []
    for i, source in enumerate(sources):
        obj = out / f"{i}-{source.stem}.o"
        run([wrapper, "-O2", *flags, "-c", str(source), "-o", str(obj)])
        objects.append(str(obj))
    binary = out / p.name
    run([wrapper, "-O2", *objects, "-o", str(binary), *p.libs])
    run([tool("wllvm-extract"), str(binary), "-o", str(allexe), "-f"])
    return allexe


def native_commands(p: Program, sources: list[Path], flags: list[str]) -> dict[str, list[str]]:
    """The baselines' build commands: the same sources and flags as the allcc build."""
    files = [str(s) for s in sources]
    labels = p.compilers
    return {
        labels["zig"]: zig_command("c++" if p.cxx else "cc", "-target", MUSL_TARGET, "-O2",
                                   "-static", "-s", *flags, *files, "-o",
                                   str(WORK / f"{p.name}.zig"), *p.libs),
        labels["gcc"]: ["g++" if p.cxx else "gcc", "-O2", "-s", *flags, *files, "-o",
                        str(WORK / f"{p.name}.gcc"), *p.libs],
    }


def build_note(p: Program, baseline: str) -> str:
    """How both binaries were built (sources abbreviated: the same list for every build)."""
    sources, flags = p.prepare(Path(fetch_source(p.package, str(SOURCES))))
    shown = f"<{len(sources)} {'C++' if p.cxx else 'C'} files of Debian {p.package}>"
    wrapper = p.compilers["allcc"]
    allcc = (f"{wrapper} -O2 {' '.join(flags)} -c each; {wrapper} -O2 *.o -o {p.name} "
             f"{' '.join(p.libs)}; wllvm-extract {p.name}; allready {p.name}.allexe")
    argv = native_commands(p, sources, flags)[baseline]
    native = " ".join(shown if a == str(sources[0]) else a for a in argv
                      if a not in map(str, sources[1:]))
    libc = (f"; {p.compilers['gcc'].split()[0]} links glibc dynamically (Debian's default), "
            "allready and zig link musl statically" if baseline == p.compilers["gcc"] else "")
    generated = ("; the C files are the amalgamation and shell from sqlite's own `configure && "
                 "make sqlite3.c shell.c`" if p.name == "sqlite3" else "")
    return f"built by: {allcc} | baseline: {native}{libc}{generated}"


_built: dict[str, dict[str, str]] = {}


def build_program(p: Program) -> dict[str, str]:
    """{label: binary} for allready and both baselines (built once per `make bench`)."""
    if p.name in _built:
        return _built[p.name]
    sources, flags = p.prepare(Path(fetch_source(p.package, str(SOURCES))))
    allexe = build_allexe(p, sources, flags)
    binaries = {"allready": static_binary(str(allexe), str(CACHE))}
    for label, argv in native_commands(p, sources, flags).items():
        binary = argv[argv.index("-o") + 1]
        if not os.path.exists(binary):
            run(argv, env=zig_env() if label.startswith("zig") else None)
        binaries[label] = binary
    binaries["allexe"] = str(allexe)
    _built[p.name] = binaries
    return binaries


def fig3_programs(s: Settings) -> list[dict]:
    records = []
    for p in PROGRAMS:
        binaries = build_program(p)
        args = p.workload(s)
        labels = (p.compilers["zig"], p.compilers["gcc"], "allready")
        results = by_label(measure([Command(label, [binaries[label], *args]) for label in labels],
                                   runs=s.runs))
        print_table(f"fig 3: {p.name} (Debian source)", list(results.values()),
                    baseline=labels[0])
        for baseline in labels[:2]:
            records.append(ratio_record(f"3 {p.name}", results["allready"], results[baseline],
                                        goal="≤ 1.02×", goal_max=1.02,
                                        note=build_note(p, baseline)))
    return records


def fig8_cxx_start(s: Settings) -> list[dict]:
    """A C++ program's start on alley's JIT path: cold (empty cache: compile, link with the
    C++ runtime) against warm (objects cached: link only)."""
    allexe = build_program(next(p for p in PROGRAMS if p.cxx))["allexe"]
    cold, warm = WORK / "cache-cxx-cold", WORK / "cache-cxx-warm"
    shutil.rmtree(warm, ignore_errors=True)
    run([tool("alley"), "-noexec", allexe], env=cache_env(warm))
    argv = [tool("alley"), allexe, "--version"]
    commands = [Command("alley cold", argv, env=cache_env(cold),
                        before=lambda: shutil.rmtree(cold, ignore_errors=True)),
                Command("alley warm", argv, env=cache_env(warm))]
    results = by_label(measure(commands, runs=s.runs))
    print_table("fig 8: lzip (C++) --version on the JIT path", list(results.values()),
                baseline="alley warm")
    return [ratio_record("8 C++ start (lzip)", results["alley cold"], results["alley warm"],
                         note="cold: empty cache, every module compiled and linked with the C++ "
                              "runtime; warm: objects cached, only the link")]


# --- figure 4: alltogether + allready against allready ---------------------------------------

def workloads_for_fig4(s: Settings) -> list[tuple[str, str, list[str], bytes | None]]:
    """(name, allexe, arguments, stdin): the demo examples and figure 3's programs."""
    work = str(WORK / "examples")
    os.makedirs(work, exist_ok=True)
    items = []
    for name in DEMO_PROGRAMS:
        args, stdin = example_workload(name, work)
        items.append((name, os.path.join(DEMO_BUILD, f"{name}.allexe"), args, stdin))
    for p in PROGRAMS:
        items.append((p.name, build_program(p)["allexe"], p.workload(s), None))
    return items


def fig4_alltogether(s: Settings) -> list[dict]:
    records = []
    for name, allexe, args, stdin in workloads_for_fig4(s):
        merged = str(WORK / f"{name}.merged.allexe")
        merge = [tool("alltogether"), allexe, "-o", merged, "-f"]
        run(merge)
        binaries = {"allready": static_binary(allexe, str(CACHE)),
                    "alltogether+allready": static_binary(merged, str(CACHE))}
        base, contender = measure([Command(label, [path, *args], stdin=stdin)
                                   for label, path in binaries.items()], runs=s.runs)
        print_table(f"fig 4: {name}: alltogether+allready vs allready", [base, contender],
                    baseline="allready")
        records.append(ratio_record(f"4 {name}", contender, base, goal="≤ 0.97×",
                                    goal_max=0.97, note=f"merged by: {' '.join(merge)}"))
        records.append(size_record(
            f"4 {name}", "alltogether+allready", os.path.getsize(binaries["alltogether+allready"]),
            "allready", os.path.getsize(binaries["allready"]), goal="< 1.0× (smaller)",
            goal_max=0.9999, commands=(f"allready {merged}", f"allready {allexe}")))
    return records


# --- figure 5: allmux ------------------------------------------------------------------------

def corpus_allexes(package: str) -> dict[str, Path]:
    """A corpus package's allexes by program name, where `make corpus` leaves them
    (build/corpus/PKG/allexes); made by allvm-debian with the list's entry (no tests) where
    it has not."""
    path = CORPUS_OUT / package / "report.json"
    report = json.loads(path.read_text()) if path.exists() else None
    if (not report or report["error"]
            or not all(os.path.exists(p["allexe"]) for p in report["programs"])):
        print(f"building the corpus package {package} (allvm-debian, no tests)", flush=True)
        report = build_package(package, CORPUS_OUT, jobs=os.cpu_count() or 1, test=False,
                               entry=load_list(CORPUS_LIST).get(package))
        if report["error"]:
            raise RuntimeError(f"{package}: {report['error']}")
    return {p["name"]: Path(p["allexe"]) for p in report["programs"]}


def coreutils_build(label: str, cc: str, target: str, extra_flags: list[str]) -> Path:
    """coreutils built again from the same source with CC for TARGET (its configure flags as
    COREUTILS_BUILD says)."""
    tree = Path(fetch_source("coreutils", str(SOURCES / label)))
    stamp = tree / ".allvm-bench-built"
    if not stamp.exists():
        print(f"fig 5: building coreutils ({label}: CC={cc} {' '.join(extra_flags)})",
              flush=True)
        env = {**os.environ, "CC": cc, "ALLVM_CC_TARGET": target}
        with open(SOURCES / f"{label}.log", "w") as log:
            for line in COREUTILS_BUILD:
                subprocess.run(["bash", "-c", line.format(extra=" ".join(extra_flags))],
                               cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT,
                               check=True)
        stamp.write_text("")
    return tree


def stripped(binary: Path, out: Path) -> str:
    """A copy of the binary with no symbols, debug info or allcc bitcode list: what ships."""
    run(["strip", "-s", "-R", ".llvm_bc", str(binary), "-o", str(out)])
    return str(out)


def fig5_coreutils(s: Settings) -> list[dict]:
    """coreutils: its programs muxed, against the sum of their static binaries, its dynamic
    build plus the shared libraries, and its own --enable-single-binary build."""
    work = WORK / "allmux-coreutils"
    work.mkdir(parents=True, exist_ok=True)
    allexes = corpus_allexes("coreutils")
    names = sorted(allexes)
    muxed = str(work / "coreutils.allexe")
    run([tool("allmux"), *map(str, allexes.values()), "-o", muxed, "-f"])
    mux = static_binary(muxed, str(CACHE))
    run([tool("allready"), *map(str, allexes.values())], env=cache_env(CACHE))
    statics = {n: static_binary_path(str(allexes[n]), str(CACHE)) for n in names}
    dynamic_tree = coreutils_build("coreutils-gcc", "gcc", GNU_TARGET, [])
    dynamics = [stripped(dynamic_tree / "src" / n, work / f"{n}.dynamic") for n in names]
    libraries = bench_allmux.shared_libraries(dynamics)
    single_tree = coreutils_build("coreutils-single", tool("allcc"), GNU_TARGET,
                                  ["--enable-single-binary"])
    single = stripped(single_tree / "src" / "coreutils", work / "coreutils.single")
    # The mux linked into one module, where LLVM's mergefunc/constmerge find the copies of
    # gnulib every program carries: allvm's own tools, composed.
    linked, merged = str(work / "coreutils.linked.allexe"), str(work / "coreutils.merged.allexe")
    run([tool("alltogether"), "-q", "-disable-opt", muxed, "-o", linked, "-f"])
    run([tool("allopt"), "-i", linked, "-o", merged, "-f", f"-passes={MERGE_PIPELINE}"])
    contenders = {
        "mux static": (os.path.getsize(mux), f"allmux {len(names)} coreutils allexes | allready"),
        "mux merged static": (os.path.getsize(static_binary(merged, str(CACHE))),
                              f"allmux | alltogether -disable-opt | allopt "
                              f"-passes={MERGE_PIPELINE} | allready"),
    }
    baselines = [
        (f"sum of {len(statics)} static", sum(map(os.path.getsize, statics.values())),
         "allready each", "≤ 0.20×", 0.20),
        (f"{len(dynamics)} dynamic + {len(libraries)} libs",
         sum(map(os.path.getsize, [*dynamics, *libraries])), "configure CC=gcc && make; strip",
         "", None),
        ("--enable-single-binary", os.path.getsize(single), "configure CC=allcc "
         "--enable-single-binary && make; strip (zig cc -O2, x86_64-linux-gnu like the "
         "Debian-built allexes)", "≤ 1.0×", 1.0),
    ]
    records = [size_record("5 allmux (coreutils)", contender, size, baseline, baseline_size,
                           goal=goal, goal_max=goal_max, commands=(command, baseline_command))
               for contender, (size, command) in contenders.items()
               for baseline, baseline_size, baseline_command, goal, goal_max in baselines]
    name, args = "echo", ["hello"]  # start-up: one muxed program against its static binary
    static, muxed_run = measure([
        Command("static", [statics[name], *args]),
        Command("mux static", [bench_allmux.symlink(mux, str(work / "mux-bin"), name), *args])],
        runs=s.runs * 2)
    print_table(f"fig 5: coreutils {name} start-up, muxed vs static", [static, muxed_run],
                baseline="static")
    records.append(ratio_record("5 allmux start-up (echo)", muxed_run, static))
    return records


def fig5_allmux(s: Settings) -> list[dict]:
    work = WORK / "allmux"
    work.mkdir(parents=True, exist_ok=True)
    inputs = bench_allmux.allexes()
    muxed = str(work / "examples.allexe")
    run([tool("allmux"), *inputs.values(), "-o", muxed, "-f"])
    mux = static_binary(muxed, str(CACHE))
    statics = {n: static_binary(path, str(CACHE)) for n, path in inputs.items()}
    dynamics = {n: bench_allmux.dynamic(n, str(work)) for n in inputs}
    libraries = bench_allmux.shared_libraries(list(dynamics.values()))
    static_sum = sum(map(os.path.getsize, statics.values()))
    dynamic_sum = sum(map(os.path.getsize, [*dynamics.values(), *libraries]))
    names = ", ".join(inputs)
    records = [
        size_record("5 allmux (examples)", "mux static", os.path.getsize(mux),
                    f"sum of {len(statics)} static", static_sum, goal="≤ 0.20×", goal_max=0.20,
                    commands=(f"allmux {names} | allready", "allready")),
        size_record("5 allmux (examples)", "mux static", os.path.getsize(mux),
                    f"{len(dynamics)} dynamic + {len(libraries)} libs", dynamic_sum,
                    commands=(f"allmux {names} | allready", "zig cc -target x86_64-linux-gnu")),
    ]
    name = "wc"  # start-up: one muxed program (through a symlink) against its static binary
    args = bench_allmux.STARTUP_ARGS[name]
    static, muxed_run = measure([
        Command("static", [statics[name], *args], stdin=b""),
        Command("mux static", [bench_allmux.symlink(mux, str(work / "mux-bin"), name), *args],
                stdin=b"")], runs=s.runs * 2)
    print_table(f"fig 5: {name} start-up, muxed vs static", [static, muxed_run],
                baseline="static")
    records.append(ratio_record("5 allmux start-up (wc)", muxed_run, static))
    return records + ([] if s.quick else fig5_coreutils(s))


# --- figure 6: allready's throughput, -j1 against -j2 ----------------------------------------

def peak_rss_kib(argv: list[str], env: dict[str, str]) -> int:
    """Peak resident set (KiB) of the largest process of one run, by GNU time."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], env=env, check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(re.findall(r"^(\d+)$", proc.stderr, re.M)[-1])


def allready_allexes(s: Settings) -> list[str]:
    """Quick: the demo's and figure 3's allexes. Full: the whole corpus's."""
    if s.quick:
        allexes = [os.path.join(DEMO_BUILD, f"{n}.allexe") for n in DEMO_PROGRAMS]
        return allexes + [build_program(p)["allexe"] for p in PROGRAMS if p.name != "sqlite3"]
    return [str(a) for name in load_list(CORPUS_LIST) for a in corpus_allexes(name).values()]


def fig6_allready(s: Settings) -> list[dict]:
    allexes = allready_allexes(s)
    commands = []
    for jobs in ("1", "2"):
        cache = WORK / f"cache-allready-j{jobs}"
        commands.append(Command(f"allready -j {jobs}", [tool("allready"), "-j", jobs, *allexes],
                                env=cache_env(cache),
                                before=lambda c=cache: shutil.rmtree(c, ignore_errors=True)))
    print(f"fig 6: allready over {len(allexes)} allexes, cold cache each run", flush=True)
    j1, j2 = measure(commands, runs=max(2, s.runs // 2), warmup=0)
    print_table("fig 6: allready -j1 vs -j2", [j1, j2], baseline="allready -j 1")
    rss = {}
    for command in commands:
        command.before()
        rss[command.label] = peak_rss_kib(command.argv, command.env)
    note = (f"peak RSS of the largest process: -j1 {rss['allready -j 1'] // 1024} MiB, "
            f"-j2 {rss['allready -j 2'] // 1024} MiB (/usr/bin/time -f %M)")
    record = ratio_record("6 allready", j2, j1, goal="speed-up ≥ 1.8× (ratio ≤ 0.56)",
                          goal_max=1 / 1.8, note=note)
    record["peak_rss_kib"] = rss
    return [record]


# --- figure 9: the platform in IR -------------------------------------------------------------

def fig9_platform_ir(s: Settings) -> list[dict]:
    work = WORK / "platform-ir"
    work.mkdir(parents=True, exist_ok=True)
    records = []
    for name in bench_platform_ir.SMALL:
        allexe, native = bench_platform_ir.small_program(name, work)
        args, stdin = bench_platform_ir.small_workload(name, work, s.quick)
        records += bench_platform_ir.compare(name, allexe, native, args, stdin, s.runs, work,
                                             str(CACHE))
    for p in PROGRAMS:
        allexe = build_program(p)["allexe"]
        sources, flags = p.prepare(Path(fetch_source(p.package, str(SOURCES))))
        native = native_commands(p, sources, flags)["zig cc -O2 static"]
        records += bench_platform_ir.compare(p.name, allexe, native, p.workload(s), None,
                                             s.runs, work, str(CACHE))
    return records + bench_platform_ir.summary(records)


# --- figure 10: allready on a Dask cluster ---------------------------------------------------

def fig10_cluster(s: Settings) -> list[dict]:
    """Two local Dask workers against -j 2 and -j 1 over figure 6's allexes (bench_cluster)."""
    return bench_cluster.figure(allready_allexes(s), max(2, s.runs // 2), WORK / "cluster")


# --- figure 11: first runs from the fast tier -------------------------------------------------

SMALL_LUA = 'print(string.format("%d %s", 6 * 7, ("x"):rep(3)))\n'


def fresh(cache: Path) -> Callable[[], None]:
    """Before a cold run: no cache, and no promoter of an earlier run still building."""
    def empty() -> None:
        subprocess.run(["pkill", "-KILL", "-f", "allvm.native.promote"], check=False)
        shutil.rmtree(cache, ignore_errors=True)
    return empty


def first_run(label: str, allexe: str, args: list[str], cache: Path, tier: str) -> Command:
    return Command(label, [tool("alley"), allexe, *args],
                   env={**cache_env(cache), "ALLVM_TIER": tier}, before=fresh(cache))


# The floor under a first run: a fresh process that only compiles the allexe's modules as the
# fast tier does (parse, O0 code generation), with no cache, link or run.
CODEGEN_ONLY = ("import sys\n"
                "from allvm.allexe import Allexe\n"
                "from allvm.codegen import compile_object\n"
                "from allvm.native.settings import FAST\n"
                "allexe = Allexe.open(sys.argv[1])\n"
                "for entry in allexe.modules:\n"
                "    compile_object(allexe.read_module(entry), entry.name, FAST)\n")
CODEGEN_ONLY_LABEL = "its code generation alone, fast tier"


def fig11_tiers(s: Settings) -> list[dict]:
    """A program's first run (empty cache) from the fast tier, against the optimized tier's
    first run (the JIT path before tiers) and, for Lua, against building it with zig cc -O2,
    beside the first run's floor (its modules' code generation alone); and 200 runs of a fresh
    allexe against 200 runs of the native program."""
    records = []
    lua = next(p for p in PROGRAMS if p.name == "lua")
    sources, flags = lua.prepare(Path(fetch_source(lua.package, str(SOURCES))))
    built = {p.name: build_program(p) for p in PROGRAMS if p.name in ("lua", "sqlite3", "lzip")}
    zig_build = native_commands(lua, sources, flags)[lua.compilers["zig"]]
    zig_build[zig_build.index("-o") + 1] = str(WORK / "lua.zig-timed")
    # zig caches what it compiled: a definition that changes every run (the shell's pid)
    # makes each timed build compile every file, as a first build does (libc stays cached).
    zig_build = ["sh", "-c", '"$@" -DALLVM_BENCH_RUN=$$', "sh", *zig_build]
    script = WORK / "small.lua"
    script.write_text(SMALL_LUA)
    cases = [("Lua", built["lua"]["allexe"], [str(script)], "≤ 0.15× of zig cc -O2's build",
              0.15),
             ("sqlite3", built["sqlite3"]["allexe"], [":memory:", "select 1;"], "≤ 2 s", None),
             ("lzip (C++)", built["lzip"]["allexe"], ["--version"], "≤ 0.3 s", None)]
    for name, allexe, args, goal, goal_max in cases:
        commands = [first_run("first run, fast tier", allexe, args, WORK / "cache-fast", "fast"),
                    first_run("first run, optimized tier", allexe, args, WORK / "cache-opt",
                              "optimized"),
                    Command(CODEGEN_ONLY_LABEL, [sys.executable, "-c", CODEGEN_ONLY, allexe])]
        if name == "Lua":
            commands.append(Command("zig cc -O2 build", zig_build, env=zig_env()))
        results = by_label(measure(commands, runs=max(3, s.runs // 2)))
        print_table(f"fig 11: {name}'s first run", list(results.values()),
                    baseline="first run, optimized tier")
        baseline = "zig cc -O2 build" if name == "Lua" else "first run, optimized tier"
        fast = results["first run, fast tier"]
        met_note = (f"fast tier's median {fast.median:.2f} s (goal {goal}), of which its code "
                    f"generation alone {results[CODEGEN_ONLY_LABEL].median:.2f} s")
        records.append(ratio_record(f"11 first run ({name})", fast, results[baseline],
                                    goal=goal, goal_max=goal_max, note=met_note))
        fresh(WORK / "cache-fast")()
    records.append(two_hundred_runs(s, built["lua"], script))
    return records


def two_hundred_runs(s: Settings, lua: dict[str, str], script: Path) -> dict:
    """200 runs of a small Lua script: a fresh allexe (empty cache, fast tier, promoted as it
    goes) against the native program (zig cc -O2 static)."""
    loop = 'i=0; while [ $i -lt 200 ]; do "$@" >/dev/null; i=$((i+1)); done'
    cache = WORK / "cache-200"
    commands = [Command("200 runs, fresh allexe", ["sh", "-c", loop, "sh", tool("alley"),
                                                    lua["allexe"], str(script)],
                        env={**cache_env(cache), "ALLVM_TIER": "fast"}, before=fresh(cache)),
                Command("200 runs, native", ["sh", "-c", loop, "sh", lua["zig cc -O2 static"],
                                             str(script)])]
    results = by_label(measure(commands, runs=max(3, s.runs // 2)))
    print_table("fig 11: 200 runs of a small Lua script", list(results.values()),
                baseline="200 runs, native")
    fresh(cache)()
    return ratio_record("11 200 runs (Lua)", results["200 runs, fresh allexe"],
                        results["200 runs, native"], goal="≤ 1.5×", goal_max=1.5,
                        note="the fresh allexe's first run compiles (fast tier); its "
                             "stand-in binary serves the next starts until the optimized "
                             "one replaces it")


# --- figure 14: profiles from real runs (PGO) ------------------------------------------------

# Each program's profile run on a committed workload of its own (corpus/), not the one timed.
CORPUS_PROFILE_RUNS = {"lua": "lua5.4 {corpus}/lua_smoke.lua",
                       "sqlite3": "sqlite3 :memory: < {corpus}/sqlite_workload.sql"}
PGO_BASELINE = "zig cc -O2 -flto static"
PGO_CORPUS = "allready -profile-run (corpus workload)"
PGO_SELF = "allready -profile-run (timed workload)"
PGO_CONTROL = "allready, default<O2> again (no profile)"


def profiled_binary(allexe: str, command: str, cache: Path) -> str:
    """`allready -profile-run COMMAND` into `cache`; the path of the binary alley runs."""
    run([tool("allready"), "-profile-run", command, allexe], env=cache_env(cache))
    return static_binary_path(allexe, str(cache))


def reoptimized_binary(allexe: str, cache: Path) -> str:
    """The control: the same default<O2> pipeline over the allexe, no profile, allready'd."""
    out = str(WORK / f"{Path(allexe).stem}.O2-again.allexe")
    if not os.path.exists(out):
        run([tool("allopt"), "-i", allexe, "-o", out, "-f", "-passes=default<O2>"])
    return static_binary(out, str(cache))


def pgo_binaries(p: Program, s: Settings) -> dict[str, str]:
    """{label: binary} of figure 14's builds of one program."""
    built = build_program(p)
    sources, flags = p.prepare(Path(fetch_source(p.package, str(SOURCES))))
    lto = bench_platform_ir.lto_command(native_commands(p, sources, flags)[p.compilers["zig"]])
    if not os.path.exists(lto[lto.index("-o") + 1]):
        run(lto, env=zig_env())
    corpus = CORPUS_PROFILE_RUNS[p.name].format(corpus=ROOT / "corpus")
    timed = shlex.join([p.package, *p.workload(s)])
    return {PGO_BASELINE: lto[lto.index("-o") + 1],
            "allready": built["allready"],
            PGO_CONTROL: reoptimized_binary(built["allexe"], WORK / "cache-pgo-control"),
            PGO_CORPUS: profiled_binary(built["allexe"], corpus, WORK / "cache-pgo-corpus"),
            PGO_SELF: profiled_binary(built["allexe"], timed, WORK / "cache-pgo-timed")}


def fig14_profiles(s: Settings) -> list[dict]:
    """Lua and sqlite3 optimized with profiles of real runs (allready -profile-run), timed on
    figure 3's workloads against zig cc -O2 -flto of the same sources: profiled on a committed
    corpus workload (another program than the one timed), and on the timed workload itself
    (the best a profile can do here). Plain allready, and the same pipeline rerun without a
    profile, show what the profile itself adds."""
    records = []
    for p in (q for q in PROGRAMS if q.name in CORPUS_PROFILE_RUNS):
        binaries = pgo_binaries(p, s)
        args = p.workload(s)
        # CPU time: the machine is shared, and a wall clock counts the others' work too.
        results = by_label(measure([Command(label, [binary, *args], cpu_time=True)
                                    for label, binary in binaries.items()],
                                   runs=max(s.runs, 5)))
        print_table(f"fig 14: {p.name} optimized with profiles (CPU time)",
                    list(results.values()),
                    baseline=PGO_BASELINE)
        corpus = CORPUS_PROFILE_RUNS[p.name].format(corpus="corpus")
        notes = {PGO_CORPUS: f"profile run: allready -profile-run '{corpus}'; timed on figure "
                             "3's workload",
                 PGO_SELF: "profile run: the timed workload itself (figure 3's): an upper "
                           "bound"}
        for label, note in notes.items():
            records.append(ratio_record(f"14 {p.name}", results[label], results[PGO_BASELINE],
                                        goal="≤ 0.85×", goal_max=0.85, note=note))
            records.append(ratio_record(f"14 {p.name}", results[label], results[PGO_CONTROL],
                                        note=f"{note}; what the profile adds"))
    return records


# --- figure 15: code tuned for this CPU (allready -mcpu=native); the carried allexe's size --

def tuned_binary(allexe: str) -> str:
    """`allready -mcpu=native` into figure 3's cache (beside the x86-64 binary); its path."""
    from allvm.allexe import Allexe
    from allvm.cache import Cache, static_binary_key
    from allvm.native.settings import static_settings

    run([tool("allready"), "-mcpu=native", allexe], env=cache_env(CACHE))
    key = static_binary_key(Allexe.open(allexe), static_settings("native").codegen_id)
    return Cache(str(CACHE)).static_binary_path(key)


def payload(binary: str) -> bytes:
    """A cached static binary without the cache's seal: the executable itself."""
    from allvm.cache import unseal

    with open(binary, "rb") as f:
        return unseal(f.read())[0]


def carrying_binary(allexe: str) -> str:
    """Figure 3's static binary, rebuilt if it was cached before binaries carried their allexe
    (the key is the same: the default settings' binary only gained the section)."""
    from allvm.native.carry import carried_allexe

    binary = static_binary_path(allexe, str(CACHE))
    if os.path.exists(binary) and carried_allexe(payload(binary), binary) is None:
        os.unlink(binary)
    return static_binary(allexe, str(CACHE))


def fig15_cpu_tuning(s: Settings) -> list[dict]:
    """Figure 3's programs on figure 3's workloads, built for this CPU (allready -mcpu=native)
    against the default x86-64 build, CPU time medians; a tuned binary's start (the Python
    alley asks LLVM for the CPU) against the launcher's; and what the carried allexe costs in
    size (against ALLVM_CARRY_IR=0's binary of the same allexe)."""
    from allvm.native.settings import host_cpu

    records = []
    chosen = [p for p in PROGRAMS if not s.quick or p.name in ("lua", "sqlite3")]
    cpu = host_cpu()[0]
    for p in chosen:
        allexe = build_program(p)["allexe"]
        binaries = {f"allready -mcpu=native ({cpu})": tuned_binary(allexe),
                    "allready (x86-64)": carrying_binary(allexe)}
        args = p.workload(s)
        results = by_label(measure([Command(label, [binary, *args], cpu_time=True)
                                    for label, binary in binaries.items()],
                                   runs=max(s.runs, 5)))
        print_table(f"fig 15: {p.name}, tuned for {cpu} (CPU time)", list(results.values()),
                    baseline="allready (x86-64)")
        records.append(ratio_record(f"15 {p.name}", *results.values(),
                                    note="CPU time (user + system) of figure 3's workload"))
    lua = next(p for p in PROGRAMS if p.name == "lua")  # the start is timed with Lua's script
    records.append(tuned_start(s, build_program(lua)["allexe"]))
    records += carried_sizes(chosen)
    return records


def tuned_start(s: Settings, allexe: str) -> dict:
    """A cache hit's start: ALLVM_CPU=native (the Python alley) against the launcher's."""
    script = WORK / "small.lua"
    script.write_text(SMALL_LUA)
    args = [tool("alley"), allexe, str(script)]
    commands = [Command("ALLVM_CPU=native alley (hit)", args,
                        env={**cache_env(CACHE), "ALLVM_CPU": "native"}),
                Command("alley (launcher hit)", args, env=cache_env(CACHE))]
    results = by_label(measure(commands, runs=max(5, s.runs)))
    print_table("fig 15: a cache hit's start, tuned vs default", list(results.values()),
                baseline="alley (launcher hit)")
    return ratio_record("15 start (Lua)", *results.values(),
                        note="a tuned binary's start goes through the Python alley")


def carried_sizes(chosen: list[Program]) -> list[dict]:
    """Each program's static binary with its allexe against ALLVM_CARRY_IR=0's."""
    from allvm.allexe import Allexe
    from allvm.cache import Cache, static_binary_key
    from allvm.native.settings import OPTIMIZED

    records, rows = [], []
    bare_cache = WORK / "cache-no-ir"
    bare_id = OPTIMIZED.replace(carry_ir=False).codegen_id
    for p in chosen:
        allexe = build_program(p)["allexe"]
        run([tool("allready"), allexe], env={**cache_env(bare_cache), "ALLVM_CARRY_IR": "0"})
        key = static_binary_key(Allexe.open(allexe), bare_id)
        bare = len(payload(Cache(str(bare_cache)).static_binary_path(key)))
        carrying = len(payload(carrying_binary(allexe)))
        rows.append((p.name, os.path.getsize(allexe), bare, carrying))
        records.append(size_record(f"15 size ({p.name})", "allready (carries its allexe)",
                                   carrying, "ALLVM_CARRY_IR=0", bare,
                                   note=f"the allexe: {os.path.getsize(allexe)} bytes"))
    print("\nfig 15: the carried allexe's size cost (bytes)")
    print(f"{'program':10} {'allexe':>10} {'binary, no IR':>14} {'binary':>10} {'cost':>8}")
    for name, allexe_size, bare, carrying in rows:
        print(f"{name:10} {allexe_size:>10} {bare:>14} {carrying:>10} "
              f"{carrying / bare - 1:>+8.1%}")
    return records


FIGURES = [
    ("1", "alley cache-hit start overhead (launcher)", fig1_launch),
    ("2", "JIT path vs lli-14", fig2_jit),
    ("3", "allready vs zig cc / gcc on Debian programs", fig3_programs),
    ("4", "alltogether+allready vs allready", fig4_alltogether),
    ("5", "allmux sizes and start-up", fig5_allmux),
    ("6", "allready -j1 vs -j2", fig6_allready),
    ("7", "coreutils' tests under alley vs native", bench_corpus_tests.figure),
    ("8", "a C++ program's cold vs warm JIT start", fig8_cxx_start),
    ("9", "the platform in IR: alltogether -platform-ir vs zig cc (-flto)", fig9_platform_ir),
    ("10", "allready on 2 Dask workers vs -j2 / -j1", fig10_cluster),
    ("11", "first runs from the fast tier, and 200 runs of a fresh allexe", fig11_tiers),
    ("12", "libc where programs meet it: the platform vs glibc (CPU time)", bench_libc.figure),
    ("14", "profiles from real runs (allready -profile-run) vs zig cc -O2 -flto", fig14_profiles),
    ("15", "-mcpu=native vs x86-64; the carried allexe's size", fig15_cpu_tuning),
]
