"""allready on a Dask cluster against the local process pool, on this machine:

  allready -scheduler   two local Dask workers (`dask worker --nworkers 2 --nthreads 1`)
  allready -j 2         the local process pool on the same 2 cores (goal: ≤ 1.15× its time)
  allready -j 1

every run with a cold cache. Then the engine's own cost, on small modules (one-module allexes
of a few hundred bytes): the scheduler's CPU time per task and the client's per allexe. The
cluster run's task stream gives the compile time per module, the link time per allexe and the
bytes each task produces: with the stored bytes shipped, the inputs of README's estimate for a
big cluster ("Scaling out").

    .venv/bin/python bench/bench_cluster.py ALLEXE... [--runs N]
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import Command, children_cpu, measure, print_table, ratio_record  # noqa: E402

from allvm.allexe import Allexe, write_allexe  # noqa: E402
from allvm.cache import object_key  # noqa: E402

BIN = Path(sys.executable).parent
# Its number in bench/figures.py (a report's records are grouped by it).
FIGURE = "10"
SMALL_ALLEXES = 60
IDLE_SECONDS = 5


def tool(name: str) -> str:
    return str(BIN / name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_cluster(directory: Path, workers: int = 2):
    """(address, scheduler pid, client) of a scheduler and `workers` one-thread workers on
    loopback, started with Dask's own commands and stopped on the way out."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    logs = open(directory / "dask.log", "ab")
    # Loopback only, also the HTTP server Dask starts without a dashboard.
    common = ["--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
    processes = [subprocess.Popen([tool("dask"), "scheduler", "--port", address.rsplit(":")[-1],
                                   "--idle-timeout", "3600", *common], stdout=logs,
                                  stderr=subprocess.STDOUT, start_new_session=True)]
    client = None
    try:
        processes.append(subprocess.Popen(
            [tool("dask"), "worker", address, "--nworkers", str(workers), "--nthreads", "1",
             "--death-timeout", "60", "--local-directory", str(directory), *common],
            stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        client = Client(address, timeout=60, set_as_default=False)
        client.wait_for_workers(workers, timeout=120)
        client.get_task_stream()  # record tasks from now on
        yield address, processes[0].pid, client
    finally:
        if client is not None:
            client.close()
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        logs.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_cache(cache: Path):
    return lambda: shutil.rmtree(cache, ignore_errors=True)


def instrumented_run(address: str, scheduler_pid: int, client, allexes: list[str],
                     cache: Path) -> dict:
    """One cold cluster run, with what it cost where: wall time, the client's and the
    scheduler's CPU time, and every task's compute time and result size (task stream)."""
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "ALLVM_CACHE_DIR": str(cache)}
    # The scheduler's own idle cost (heartbeats, work stealing's ticks) is not the tasks'.
    idle_cpu = cpu_seconds(scheduler_pid)
    time.sleep(IDLE_SECONDS)
    idle_rate = (cpu_seconds(scheduler_pid) - idle_cpu) / IDLE_SECONDS
    workers = list(client.run(os.getpid).values())
    start, scheduler_cpu, client_cpu = time.time(), cpu_seconds(scheduler_pid), children_cpu()
    workers_cpu = sum(map(cpu_seconds, workers))
    subprocess.run([tool("allready"), "-scheduler", address, *allexes], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.time() - start
    tasks = client.get_task_stream(start=start)
    return {"wall_s": wall, "tasks": tasks,
            "client_cpu_s": children_cpu() - client_cpu,
            "workers_cpu_s": sum(map(cpu_seconds, workers)) - workers_cpu,
            "scheduler_cpu_s": cpu_seconds(scheduler_pid) - scheduler_cpu - idle_rate * wall}


def compute_seconds(task: dict) -> float:
    return sum(s["stop"] - s["start"] for s in task["startstops"] if s["action"] == "compute")


def task_costs(run: dict, allexes: list[str]) -> dict:
    """Per-task numbers of one instrumented run (medians and means; sizes in bytes)."""
    compiles = [t for t in run["tasks"] if str(t["key"]).startswith("codegen-")]
    links = [t for t in run["tasks"] if str(t["key"]).startswith("link-")]
    stored, modules = {}, 0
    for path in allexes:
        allexe = Allexe.open(path)
        modules += len(allexe.modules)
        for entry in allexe.modules:
            stored[object_key(allexe, entry)] = entry.compressed_size
    compile_s = [compute_seconds(t) for t in compiles]
    link_s = [compute_seconds(t) for t in links]
    tasks = len(compiles) + len(links)
    return {
        "allexes": len(allexes), "modules": modules, "distinct_modules": len(stored),
        "compile_tasks": len(compiles), "link_tasks": len(links),
        "compile_s_mean": statistics.mean(compile_s),
        "compile_s_median": statistics.median(compile_s),
        "link_s_mean": statistics.mean(link_s),
        "stored_bytes_mean": statistics.mean(stored.values()),
        "object_bytes_mean": statistics.mean(t["nbytes"] for t in compiles),
        "binary_bytes_mean": statistics.mean(t["nbytes"] for t in links),
        "wall_s": run["wall_s"], "workers_cpu_s": run["workers_cpu_s"],
        "tasks_compute_s": sum(compile_s) + sum(link_s),
        "scheduler_cpu_ms_per_task": 1000 * run["scheduler_cpu_s"] / tasks,
        "client_cpu_ms_per_allexe": 1000 * run["client_cpu_s"] / len(allexes),
    }


def small_allexes(directory: Path, count: int) -> list[str]:
    """`count` one-module programs printing their number: distinct modules, tiny code."""
    from allvm.ir import llvm

    paths = []
    for i in range(count):
        text = f"tiny {i}"
        ir = (f'target triple = "x86_64-unknown-linux-musl"\n'
              f'@s = private constant [{len(text) + 1} x i8] c"{text}\\00"\n'
              "declare i32 @puts(ptr)\n"
              "define i32 @main() {\n  call i32 @puts(ptr @s)\n  ret i32 0\n}\n")
        path = directory / f"tiny{i}.allexe"
        write_allexe(str(path), [("main.bc", llvm().parse_assembly(ir).as_bitcode())],
                     force=True)
        paths.append(str(path))
    return paths


def commands(address: str, allexes: list[str], work: Path, suffix: str = "") -> list[Command]:
    """The cluster and the local pool (-j 2, -j 1), each with its own cache, emptied first."""
    result = []
    for name, label, options in (("cluster", "allready on 2 Dask workers", ["-scheduler", address]),
                                 ("j2", "allready -j 2", ["-j", "2"]),
                                 ("j1", "allready -j 1", ["-j", "1"])):
        cache = work / f"cache-{name}"
        result.append(Command(label + suffix, [tool("allready"), *options, *allexes],
                              env={**os.environ, "ALLVM_CACHE_DIR": str(cache)},
                              before=cold_cache(cache)))
    return result


def cost_note(costs: dict) -> str:
    return (f"{costs['allexes']} allexes, {costs['modules']} modules, "
            f"{costs['compile_tasks']} compile + {costs['link_tasks']} link tasks; compile "
            f"{costs['compile_s_mean']:.2f} s/module (mean; median "
            f"{costs['compile_s_median']:.2f} s), link {costs['link_s_mean'] * 1000:.0f} ms/allexe;"
            f" per module {costs['stored_bytes_mean'] / 1024:.0f} KiB stored, "
            f"{costs['object_bytes_mean'] / 1024:.0f} KiB object; "
            f"{costs['binary_bytes_mean'] / 1024:.0f} KiB binary per allexe; scheduler "
            f"{costs['scheduler_cpu_ms_per_task']:.2f} ms CPU/task, client "
            f"{costs['client_cpu_ms_per_allexe']:.1f} ms CPU/allexe (start-up included)")


def corpus_records(cluster: tuple, allexes: list[str], runs: int, work: Path) -> list[dict]:
    """The cluster against -j 2 (the goal) and -j 1 over real allexes, cold cache each run."""
    costs = task_costs(instrumented_run(*cluster, allexes, work / "cache-instrumented"), allexes)
    print(f"fig {FIGURE}: {len(allexes)} allexes, cold cache each run", flush=True)
    on_cluster, j2, j1 = measure(commands(cluster[0], allexes, work), runs=runs, warmup=0)
    print_table(f"fig {FIGURE}: allready on 2 Dask workers vs the local pool",
                [on_cluster, j2, j1], baseline="allready -j 2")
    print(f"costs: {costs}", flush=True)
    name = f"{FIGURE} allready on Dask"
    records = [ratio_record(name, on_cluster, j2, goal="≤ 1.15×", goal_max=1.15,
                            note=cost_note(costs)),
               ratio_record(name, on_cluster, j1, note="the same runs")]
    records[0]["costs"] = costs
    return records


def small_module_records(cluster: tuple, runs: int, work: Path) -> list[dict]:
    """The engine's cost on one-module allexes of a few hundred bytes: a run of one allexe (the
    start-up) against a run of SMALL_ALLEXES, so the difference is the per-task part."""
    small = small_allexes(Path(tempfile.mkdtemp(dir=work)), SMALL_ALLEXES)
    one, many = (instrumented_run(*cluster, paths, work / "cache-instrumented")
                 for paths in (small[:1], small))
    extra_tasks = len(many["tasks"]) - len(one["tasks"])
    marginal = {
        "scheduler_cpu_ms_per_task": 1000 * (many["scheduler_cpu_s"] - one["scheduler_cpu_s"])
        / extra_tasks,
        "client_cpu_ms_per_allexe": 1000 * (many["client_cpu_s"] - one["client_cpu_s"])
        / (len(small) - 1),
        "client_start_cpu_s": one["client_cpu_s"]}
    timed = measure(commands(cluster[0], small[:1], work, " (1 allexe)")[:2]
                    + commands(cluster[0], small, work, f" ({len(small)} allexes)")[:2],
                    runs=runs, warmup=0)
    print_table(f"fig {FIGURE}: one-module allexes", timed, baseline=timed[1].command.label)
    (c1, l1, cn, ln) = (r.median for r in timed)
    marginal["cluster_ms_per_allexe"] = 1000 * (cn - c1) / (len(small) - 1)
    marginal["local_j2_ms_per_allexe"] = 1000 * (ln - l1) / (len(small) - 1)
    marginal["start_s"] = {"cluster": c1, "-j 2": l1}
    print(f"small modules: {marginal}", flush=True)
    note = (f"start-up (1 allexe): {c1:.2f} s on the cluster, {l1:.2f} s with -j 2; each further "
            f"allexe (2 tasks): {marginal['cluster_ms_per_allexe']:.1f} ms on the cluster, "
            f"{marginal['local_j2_ms_per_allexe']:.1f} ms with -j 2; scheduler "
            f"{marginal['scheduler_cpu_ms_per_task']:.2f} ms CPU/task, client "
            f"{marginal['client_cpu_ms_per_allexe']:.1f} ms CPU/allexe")
    record = ratio_record(f"{FIGURE} small modules", timed[2], timed[3], note=note)
    record["costs"] = marginal
    return [record]


def figure(allexes: list[str], runs: int, work: Path) -> list[dict]:
    """Records for the report: the cluster against the local pool over `allexes`, and the
    engine's per-task costs on small modules."""
    work.mkdir(parents=True, exist_ok=True)
    with local_cluster(work) as cluster:
        return corpus_records(cluster, allexes, runs, work) + small_module_records(
            cluster, runs, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("allexes", nargs="*")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-only", action="store_true",
                        help="only the per-task costs on small modules (no ALLEXE needed)")
    args = parser.parse_args()
    work = HERE.parent / "build" / "bench" / "cluster"
    if args.small_only:
        work.mkdir(parents=True, exist_ok=True)
        with local_cluster(work) as cluster:
            small_module_records(cluster, args.runs, work)
    else:
        figure(args.allexes, args.runs, work)


if __name__ == "__main__":
    main()
