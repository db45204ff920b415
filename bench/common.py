"""Timing helpers every benchmark shares: alternating runs, medians, min–max, a printed table.

A benchmark names each figure by the exact command it timed, and compares it to a named
baseline as a ratio. Runs alternate between the commands (A B C A B C …) so that drift on a
shared machine (other builds, thermal state, page cache) falls on every command alike.

    from common import Command, measure, print_table
    results = measure([Command("lli orc-lazy", ["lli-14", "-jit-kind=orc-lazy", "x.bc"]),
                       Command("alley", ["alley", "x.allexe"])], runs=7)
    print_table("cold run", results, baseline="lli orc-lazy")
"""

import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_RUNS = 5


@dataclass
class Command:
    """One thing to time: a label, the exact command line, and how to run it.

    `before` runs ahead of every timed run, untimed (e.g. empty the cache for a cold run).
    `env` replaces the environment (None: inherit). `stdin` is bytes fed to the program.
    `cpu_time`: time the program's CPU time (user + system) instead of the wall clock, for
    comparisons that a machine shared with other work must not blur.
    """

    label: str
    argv: list[str]
    env: dict[str, str] | None = None
    stdin: bytes | None = None
    before: Callable[[], None] | None = None
    cwd: str | None = None
    cpu_time: bool = False

    def shown(self) -> str:
        """The command as a user would type it (environment changes first)."""
        prefix = ""
        if self.env is not None:
            removed = sorted(set(os.environ) - set(self.env))
            changed = {k: v for k, v in self.env.items() if os.environ.get(k) != v}
            prefix = " ".join([*(["env", *(f"-u {k}" for k in removed)] if removed else []),
                               *(f"{k}={shlex.quote(v)}" for k, v in sorted(changed.items()))])
        line = shlex.join(self.argv)
        return f"{prefix} {line}" if prefix else line


@dataclass
class Result:
    command: Command
    times: list[float] = field(default_factory=list)  # seconds, one per timed run

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def low(self) -> float:
        return min(self.times)

    @property
    def high(self) -> float:
        return max(self.times)


class BenchmarkError(RuntimeError):
    """A timed command failed: its figure would be meaningless."""


def time_once(command: Command) -> float:
    """Wall-clock seconds of one run, or its CPU seconds (Command.cpu_time), output discarded;
    fails if the command fails."""
    if command.before is not None:
        command.before()
    clock = children_cpu if command.cpu_time else time.perf_counter
    start = clock()
    proc = subprocess.run(command.argv, env=command.env, input=command.stdin, cwd=command.cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = clock() - start
    if proc.returncode != 0:
        raise BenchmarkError(f"{command.shown()} exited {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace').strip()[:500]}")
    return elapsed


def children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(commands: list[Command], runs: int = DEFAULT_RUNS, warmup: int = 1) -> list[Result]:
    """Time each command `runs` times, alternating between them, after `warmup` untimed rounds."""
    results = [Result(c) for c in commands]
    for _ in range(warmup):
        for command in commands:
            time_once(command)
    for _ in range(runs):
        for result in results:
            result.times.append(time_once(result.command))
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def print_table(title: str, results: list[Result], baseline: str | None = None,
                file=None) -> None:
    """Median and min–max in milliseconds, the ratio to `baseline` (a label), and each command."""
    out = file or sys.stdout
    base = next((r for r in results if r.command.label == baseline), None)
    runs = len(results[0].times) if results else 0
    print(f"\n== {title} (median of {runs} alternating runs; ms)", file=out)
    width = max(len(r.command.label) for r in results)
    print(f"  {'':{width}}  {'median':>9}  {'min–max':>17}  {'ratio':>7}", file=out)
    for r in results:
        ratio = f"{r.median / base.median:6.2f}x" if base else ""
        print(f"  {r.command.label:{width}}  {ms(r.median):>9}  "
              f"{ms(r.low) + '–' + ms(r.high):>17}  {ratio:>7}", file=out)
    if base:
        print(f"  (ratio = median / median of '{baseline}')", file=out)
    for r in results:
        print(f"  {r.command.label}: {r.command.shown()}", file=out)
    out.flush()


def median_difference(a: Result, b: Result) -> float:
    """Median over alternating pairs of (a - b), in seconds: an overhead figure that cancels
    drift better than the difference of two medians."""
    return statistics.median(x - y for x, y in zip(a.times, b.times, strict=True))


def pair_ratios(contender: Result, baseline: Result) -> list[float]:
    """contender/baseline for each alternating round: drift cancels within a round."""
    return [c / b for c, b in zip(contender.times, baseline.times, strict=True)]


def ratio_record(figure: str, contender: Result, baseline: Result, goal: str = "",
                 goal_max: float | None = None, note: str = "") -> dict:
    """One row of a report (results.json): the contender's time against the baseline's, as the
    median and min–max of the per-round ratios, both exact commands, and whether the goal (a
    median ratio at most `goal_max`) was met (None: no goal, or one not judged by the ratio)."""
    ratios = pair_ratios(contender, baseline)
    median = statistics.median(ratios)
    return {
        "figure": figure, "metric": "time",
        "contender": contender.command.label, "baseline": baseline.command.label,
        "ratio": median, "min": min(ratios), "max": max(ratios), "runs": len(ratios),
        "contender_median_s": contender.median, "baseline_median_s": baseline.median,
        "contender_command": contender.command.shown(),
        "baseline_command": baseline.command.shown(),
        "goal": goal, "met": None if goal_max is None else median <= goal_max, "note": note,
    }
