"""Profiles from real runs: `allready -profile-run`, the counters it inserts, the profile
metadata the optimized build gets, and the keys the profiled binary is cached under."""

import re

from conftest import build_allexe, run_tool

from allvm.allexe import Allexe
from allvm.cache import Cache, static_binary_key
from allvm.native import profile
from allvm.native.carry import carried_allexe
from allvm.native.settings import static_settings
from allvm.toolchain import GNU_TARGET

# A skewed branch (every 97th iteration), a switch, and calls the optimizer cannot fold away.
SKEWED_C = r"""
#include <stdio.h>
#include <stdlib.h>
volatile long sink;
__attribute__((noinline)) void rare(long i) { sink += i * 3; }
__attribute__((noinline)) void common(long i) { sink += i + 1; }
__attribute__((noinline)) void never(void) { sink = -1; }
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10;
    if (argc > 5) never();
    for (long i = 0; i < n; i++) {
        if (i % 97 == 0) rare(i); else common(i);
        switch (i % 5) {
        case 0: sink ^= 1; break;
        case 1: sink += 2; break;
        case 3: common(-i); break;
        default: break;
        }
    }
    printf("%ld\n", (long)sink);
    return 0;
}
"""


def expected_output(n: int) -> str:
    """What SKEWED_C prints for `n`, computed the program's way."""
    sink = 0
    for i in range(n):
        sink += i * 3 if i % 97 == 0 else i + 1
        if i % 5 == 0:
            sink ^= 1
        elif i % 5 == 1:
            sink += 2
        elif i % 5 == 3:
            sink += -i + 1
    return f"{sink}\n"


def entries(cache) -> dict[str, bytes]:
    """Every static binary in the cache: its name and its tag."""
    c = Cache(str(cache))
    return {p.name: c.read_entry(str(p))[1] for p in (cache / "static_binaries").iterdir()}


def test_profile_run_caches_profiled_binary_alley_runs(tmp_path, isolated_cache):
    allexe = build_allexe(tmp_path, "skewed", SKEWED_C)
    proc = run_tool("allready", "-profile-run", "skewed 20000", allexe)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"Successfully cached profiled static binary for '{allexe}'.\n"
    found = entries(isolated_cache)
    default_key = static_binary_key(Allexe.open(str(allexe)))
    tag = found.pop(default_key)  # the key alley's launcher looks up holds the profiled binary
    assert tag.startswith(b"profile ")
    identity = tag.decode().split()[1]
    own_key = static_binary_key(Allexe.open(str(allexe)),
                                static_settings().with_profile(identity).codegen_id)
    assert found == {own_key: tag}  # and the profile's own key
    binaries = {Cache(str(isolated_cache)).read_entry(
        str(isolated_cache / "static_binaries" / key))[0] for key in (default_key, own_key)}
    assert len(binaries) == 1
    assert carried_allexe(binaries.pop(), "profiled") == allexe.read_bytes()  # as allready's
    run = run_tool("alley", allexe, "3000")
    assert (run.returncode, run.stdout) == (0, expected_output(3000))
    assert not list((isolated_cache / "objects").iterdir())  # a cache hit: nothing compiled
    # A plain allready keeps the profiled binary.
    assert run_tool("allready", allexe).returncode == 0
    assert entries(isolated_cache)[default_key] == tag


def test_profiled_binary_differs_from_plain_one(tmp_path, monkeypatch):
    allexe = build_allexe(tmp_path, "skewed", SKEWED_C)
    binaries = []
    for name, args in (("plain", ()), ("profiled", ("-profile-run", "skewed 20000"))):
        cache = tmp_path / name
        monkeypatch.setenv("ALLVM_CACHE_DIR", str(cache))
        assert run_tool("allready", *args, allexe).returncode == 0
        key = static_binary_key(Allexe.open(str(allexe)))
        binaries.append(Cache(str(cache)).read_entry(str(cache / "static_binaries" / key))[0])
        assert run_tool("alley", allexe, "500").stdout == expected_output(500)
    assert binaries[0] != binaries[1]


def test_each_profile_has_its_own_key(tmp_path, isolated_cache):
    allexe = build_allexe(tmp_path, "skewed", SKEWED_C)
    tags = []
    for command in ("skewed 20000", "skewed 3 && skewed 40"):
        assert run_tool("allready", "-profile-run", command, allexe).returncode == 0
        tags.append(entries(isolated_cache)[static_binary_key(Allexe.open(str(allexe)))])
    assert tags[0] != tags[1]
    assert len(entries(isolated_cache)) == 3  # two profiled keys, and the one alley runs


def measured_text(tmp_path, allexe, commands: list[str]) -> tuple[str, list[int]]:
    """The main module's text with the profile of `commands`, and its counts: the library's
    steps of a profile run, one by one."""
    a = Allexe.open(str(allexe))
    modules = [profile.ModuleText(a, i) for i in range(len(a.modules))]
    programs, counts = tmp_path / "bin", tmp_path / "counts"
    programs.mkdir()
    counts.mkdir()
    profile.build_instrumented(a, modules, Cache(str(tmp_path / "cache")), str(programs / "p"))
    for command in commands:
        profile.profile_run(command, str(programs), str(counts))
    measured = profile.collect(modules, profile.read_counts(str(counts)))
    main = modules[0]
    own = measured.counts[main.digest]
    return profile.annotate(main.lines, main.sites, own, profile.Summary(modules, measured)), own


def weights(text: str) -> list[list[int]]:
    nodes = dict(re.findall(r'^!(\d+) = !\{!"branch_weights", (.*)\}$', text, re.MULTILINE))
    return [[int(w) for w in re.findall(r"i32 (\d+)", nodes[n])]
            for n in re.findall(r"^  (?:br|\]).*!prof !(\d+)$", text, re.MULTILINE)]


def test_counts_become_branch_weights_and_entry_counts(tmp_path):
    allexe = build_allexe(tmp_path, "skewed", SKEWED_C)
    text, counts = measured_text(tmp_path, allexe, ["p 1000", "p 970"])
    rare = sum(-(-n // 97) for n in (1000, 970))  # i % 97 == 0 for i < n, both runs
    found = weights(text)
    assert sorted([rare, 1970 - rare]) in [sorted(w) for w in found]  # the skewed branch
    # The switch: default (2 and 4), then the cases 0, 1, 3 in the order the IR lists them.
    switch = [sorted(w) for w in found if len(w) == 4]
    by_case = {r: sum(1 for n in (1000, 970) for i in range(n) if i % 5 == r) for r in range(5)}
    assert switch == [sorted([by_case[2] + by_case[4], by_case[0], by_case[1], by_case[3]])]
    entry = dict(re.findall(r"^define .*@(\w+)\(.*!prof !(\d+) \{$", text, re.MULTILINE))
    node = dict(re.findall(r'^!(\d+) = !\{!"function_entry_count", i64 (\d+)\}$', text,
                           re.MULTILINE))
    assert int(node[entry["main"]]) == 2 and int(node[entry["rare"]]) == rare
    assert '!"ProfileSummary"' in text and f'!"TotalCount", i64 {sum(counts)}' in text
    # LLVM's profile use marks functions: hot ones for inlining, never-run ones cold.
    marks = dict(re.findall(r"^define .*@(\w+)\(.*\) (?:local_unnamed_addr )?(\w+) #\d+", text,
                            re.MULTILINE))
    assert (marks["common"], marks["never"]) == ("inlinehint", "cold")


def test_library_module_with_constructor_is_profiled(tmp_path, isolated_cache):
    lib = r"""
    volatile int ready;
    __attribute__((constructor)) static void init(void) { ready = 7; }
    int pick(int i) { if (i % 3 == 0) return ready; return 1; }
    """
    main = r"""
    #include <stdio.h>
    int pick(int);
    int main(void) { int s = 0; for (int i = 0; i < 300; i++) s += pick(i); printf("%d\n", s);
                     return 0; }
    """
    allexe = build_allexe(tmp_path, "two", main, lib)
    text, _ = measured_text(tmp_path, allexe, ["p"])
    assert "function_entry_count" in text
    proc = run_tool("allready", "-profile-run", "two", allexe)
    assert proc.returncode == 0, proc.stderr
    assert run_tool("alley", allexe).stdout == f"{100 * 7 + 200}\n"


def test_bad_profile_runs_are_one_line_errors(tmp_path, isolated_cache):
    allexe = build_allexe(tmp_path, "skewed", SKEWED_C)
    cases = {
        ("./skewed 1",): "allready: -profile-run './skewed 1': the first word must name the "
                         "program (a plain name such as 'lua', which the profile run puts on "
                         "PATH)\n",
        ("skewed 1; exit 3",): "allready: -profile-run 'skewed 1; exit 3' failed (exit status "
                               "3)\n",
        ("true",): "allready: the profile runs left no counts for main.bc (did they run the "
                   "program, and did it exit normally?)\n",
        ("skewed 'x",): "allready: -profile-run 'skewed 'x': No closing quotation\n",
    }
    for commands, message in cases.items():
        proc = run_tool("allready", *(f"-profile-run={c}" for c in commands), allexe)
        assert (proc.returncode, proc.stderr) == (1, message)
    proc = run_tool("allready", "-profile-run", "skewed", allexe, allexe)
    assert (proc.returncode, proc.stderr) == (
        1, "allready: -profile-run: one ALLEXE at a time (the runs profile one program)\n")
    assert not (isolated_cache / "static_binaries").exists() or not entries(isolated_cache)


def test_summary_cutoffs_and_weight_scaling_follow_llvm():
    """The detailed summary takes the fewest, largest counts reaching each cutoff (as LLVM's
    summary builder does); weights beyond 32 bits are scaled down together."""
    rows = {cutoff: (least, seen) for cutoff, least, seen in
            profile._detailed_summary([10, 5, 3, 1, 1])}
    assert rows[10000] == (0, 0) and rows[500000] == (10, 1)
    assert rows[900000] == (3, 3) and rows[999999] == (1, 4)
    assert profile._scaled([3, 1]) == [3, 1]
    assert profile._scaled([1 << 33, 1 << 31, 7]) == [(1 << 33) // 3, (1 << 31) // 3, 2]


def test_glibc_program_is_profiled(tmp_path, isolated_cache):
    """The runtime is built for the program's libc: a glibc program counts, and runs, too."""
    allexe = build_allexe(tmp_path, "skewed", SKEWED_C, target=GNU_TARGET)
    proc = run_tool("allready", "-profile-run", "skewed 2000", allexe)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert run_tool("alley", allexe, "700").stdout == expected_output(700)
    assert not list((isolated_cache / "objects").iterdir())
