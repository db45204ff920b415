"""allvm.parallel: pool workers die with their parent, and pools nest without oversubscribing
(`allready -j N` compiles in N processes at most, not N × cores)."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from conftest import build_allexe, tool_path

from allvm import parallel
from allvm.parallel import in_parallel, process_pool

# Modules that take a few seconds each to compile: a killed allready's workers would still be
# compiling well after the test's deadline for them to be gone.
SLOW_FUNCTIONS = 600
PYTHON = os.path.realpath(sys.executable)


def slow_c(seed: int, name: str = "f", functions: int = SLOW_FUNCTIONS) -> str:
    return "".join(f"int {name}{i}(int x) {{ int s = x; for (int j = 0; j < x; j++) "
                   f"s = s * {i + seed} + j % {i + 3}; return s + {i * 7}; }}\n"
                   for i in range(functions))


def slow_allexe(directory: Path, name: str, seed: int, libraries: int = 0,
                functions: int = SLOW_FUNCTIONS) -> Path:
    """An allexe of a main module and `libraries` more, each slow to compile."""
    libs = [slow_c(seed + k, f"lib{k}_", functions) for k in range(libraries)]
    main = slow_c(seed, "f", functions) + "int main(int c, char **v) { return f1(c) & 1; }\n"
    return build_allexe(directory, name, main, *libs)


def stat_fields(pid: int) -> tuple[str, int, str] | None:
    """A process's state letter, parent pid and start time, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1]), fields[19]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))) and fields[1] == pid:
            found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        found += (kids := children(todo.pop()))
        todo += kids
    return found


def python_children(pid: int) -> list[int]:
    return [p for p in children(pid) if is_python(p)]


def is_python(pid: int) -> bool:
    """Whether the process runs this interpreter: allvm's own workers, not zig."""
    try:
        return os.path.realpath(f"/proc/{pid}/exe") == PYTHON
    except OSError:
        return False


def running(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def wait_for(condition: Callable[[], object], seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return result


def started(pids: list[int]) -> dict[int, str]:
    """Each process's start time: who it is, should its pid be reused."""
    return {pid: fields[2] for pid in pids if (fields := stat_fields(pid))}


def kill_all(processes: dict[int, str]) -> None:
    """SIGKILL each process still the one seen (same pid, same start time)."""
    for pid, start in processes.items():
        if (fields := stat_fields(pid)) and fields[2] == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def start_allready(log: Path, *args) -> subprocess.Popen:
    """allready in the background, its output in `log` (not a pipe: a worker left behind would
    hold it open)."""
    with open(log, "w") as out:
        return subprocess.Popen([tool_path("allready"), *map(str, args)], stdout=out,
                                stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, processes: dict[int, str]) -> None:
    """Kill allready and the processes it had, whatever the test saw."""
    proc.kill()
    proc.wait(10)
    kill_all(processes)


def test_workers_die_with_a_killed_allready(tmp_path):
    """On main they were reparented to init and compiled on, for nobody."""
    allexes = [slow_allexe(tmp_path, f"slow{i}", i) for i in range(3)]
    proc = start_allready(tmp_path / "log", "-j", "2", *allexes)
    seen: dict[int, str] = {}
    try:
        workers = wait_for(lambda: len(found := python_children(proc.pid)) == 2 and found, 60)
        assert workers and proc.poll() is None
        time.sleep(0.5)  # well into their first compiles
        seen = started(descendants(proc.pid))  # with any pool of their own (on main), to clean up
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not any(map(running, workers)), 5)
        left = [p for p in workers if running(p)]
        assert not left, f"workers still running 5 s after allready was killed: {left}"
    finally:
        stop(proc, seen)


def test_allready_j2_compiles_in_two_processes(tmp_path):
    """Each worker compiles its allexe's modules one at a time: on main each started a pool of
    its own (2 workers + 2 × min(modules, cores) python processes)."""
    # Modules that take a fraction of a second each: long for 10 ms samples.
    allexes = [slow_allexe(tmp_path, f"multi{i}", i, libraries=2, functions=150)
               for i in range(2)]
    proc = start_allready(tmp_path / "log", "-j", "2", *allexes)
    peak, seen, before = 0, {}, set()
    try:
        while proc.poll() is None and peak <= 2:
            found = descendants(proc.pid)
            seen.update(started(found))
            # Seen twice: not a child forked to run zig that has yet to exec it.
            now = set(filter(is_python, found))
            peak, before = max(peak, len(now & before)), now
            time.sleep(0.01)
        assert peak <= 2, f"allready -j 2 ran {peak} python processes at once"
        log = (tmp_path / "log").read_text()
        assert proc.returncode == 0, log
        assert len(log.splitlines()) == 2
        assert peak == 2
    finally:
        stop(proc, seen)


def inner_pids(_: int) -> tuple[int, list[int]]:
    """The worker's pid, and those that ran its own `in_parallel` jobs."""
    return os.getpid(), in_parallel(pid_after, [(0.05,)] * 4)


def test_in_parallel_in_a_full_pool_worker_runs_serially():
    with process_pool(2, workers=2) as pool:
        results = list(pool.map(inner_pids, range(2)))
    for worker, inner in results:
        assert worker != os.getpid()
        assert inner == [worker] * 4


def test_a_lone_worker_gets_the_whole_limit():
    """One job in a pool of limit 2: the worker's own jobs may use 2 processes (allready of one
    allexe compiles its modules in parallel, as alley would)."""
    with process_pool(1, workers=2) as pool:
        [(worker, inner)] = pool.map(inner_pids, [0])
    assert worker not in inner and 1 <= len(set(inner)) <= 2


def pool_kind(jobs: int) -> str:
    with process_pool(jobs) as pool:
        return type(pool).__name__


def test_a_pool_in_a_full_pool_worker_is_serial():
    with process_pool(2, workers=2) as pool:
        assert list(pool.map(pool_kind, [8, 8])) == ["SerialExecutor"] * 2


def test_workers_outlive_the_thread_that_first_submits():
    """PDEATHSIG follows the forking thread: the workers are forked when the pool is made, not
    by a short-lived thread's first submit (they would die with it, the pool broken)."""
    with process_pool(2, workers=2) as pool:
        thread = threading.Thread(target=lambda: pool.submit(os.getpid).result())
        thread.start()
        thread.join()
        time.sleep(0.2)
        pids = set(pool.map(pid_after, [0.05] * 4))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_a_worker_whose_parent_already_died_exits():
    """The parent may die between the fork and prctl: then the worker's parent pid is no longer
    the one captured before the fork, and it exits at once."""
    pid = os.fork()
    if pid == 0:
        try:
            parallel._die_with(os.getppid() + 1)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1
