"""allready -scheduler: code generation on a real Dask cluster (`dask scheduler` and two
`dask worker` processes on free loopback ports), against a local allready's binaries."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import build_allexe, compile_c, run_tool, tool_path

from allvm.allexe import Allexe
from allvm.cache import object_key

OTHER_CODEGEN = Path(__file__).parent / "data" / "other_codegen.py"
# Modules that take a second or more each to compile: long enough to act while they run, also
# when a loaded machine delays the test between seeing a compile and sending a signal.
SLOW_FUNCTIONS = 400
# Every server of the test on loopback only: also the HTTP one Dask starts without a dashboard.
LOOPBACK = ("--host", "127.0.0.1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaskCluster:
    """A scheduler and its workers, each in its own process group (a worker's nanny and the
    worker it starts stop together); every process stops by itself if left behind."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen] = []
        self.client = None

    def start(self, name: str, *argv: str) -> subprocess.Popen:
        with open(self.directory / f"{name}.log", "ab") as log:
            process = subprocess.Popen([tool_path("dask"), *argv], stdout=log,
                                       stderr=subprocess.STDOUT, cwd=self.directory,
                                       start_new_session=True)
        self.processes.append(process)
        return process

    def start_scheduler(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        self.start("scheduler", "scheduler", "--port", port, "--idle-timeout", "600", *LOOPBACK)

    def start_worker(self, name: str, *extra: str) -> subprocess.Popen:
        return self.start(name, "worker", self.address, "--nthreads", "1", "--death-timeout", "60",
                          "--local-directory", str(self.directory / name), *LOOPBACK, *extra)

    def connect(self):
        from distributed import Client

        self.client = Client(self.address, timeout=60, set_as_default=False)
        self.client.get_task_stream()  # the scheduler records tasks from now on

    def wait_for_workers(self, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.workers()) != count:
            assert time.monotonic() < deadline, f"{len(self.workers())} workers, not {count}"
            time.sleep(0.2)

    def workers(self) -> dict[str, dict]:
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def stop(self, process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        if self.client is not None:
            self.client.close()
        for process in reversed(self.processes):
            self.stop(process)

    def tasks_since(self, start: float) -> list[dict]:
        """Every task the workers ran since `start` (time.time()): key, worker, ..."""
        return self.client.get_task_stream(start=start)


@contextlib.contextmanager
def two_workers(directory):
    """A scheduler and two workers, connected; all stopped afterwards, also on failure."""
    cluster = DaskCluster(directory)
    try:
        cluster.start_scheduler()
        cluster.start_worker("worker-1")
        cluster.start_worker("worker-2")
        cluster.connect()
        cluster.wait_for_workers(2)
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with two_workers(tmp_path_factory.mktemp("dask")) as cluster:
        yield cluster


def slow_c(seed: int) -> str:
    body = "".join(f"int f{i}(int x) {{ int s = x; for (int j = 0; j < x; j++) "
                   f"s = s * {i + seed} + j % {i + 3}; return s + {i * 7}; }}\n"
                   for i in range(SLOW_FUNCTIONS))
    return body + ('#include <stdio.h>\nint main(int c, char **v) { printf("%d\\n", f1(c)); '
                   "return 0; }\n")


@pytest.fixture(scope="module")
def allexes(tmp_path_factory) -> dict[str, Path]:
    """Two multi-module allexes sharing a library module, a one-module allexe, and four slow."""
    d = tmp_path_factory.mktemp("allexes")
    lib = compile_c("int scale(int x) { return x * 7; }\n", d / "scale.bc")
    main = '#include <stdio.h>\nint scale(int);\nint main(void) {{ printf("{} %d\\n", ' \
           "scale({})); return 0; }}\n"
    built = {}
    for name, factor in (("a", 3), ("b", 4)):
        built[name] = d / f"{name}.allexe"
        proc = run_tool("bc2allvm", compile_c(main.format(name, factor), d / f"{name}.bc"), lib,
                        "-o", built[name])
        assert proc.returncode == 0, proc.stderr
    built["hello"] = build_allexe(d, "hello", '#include <stdio.h>\nint main(void) '
                                              '{ puts("hello"); return 0; }\n')
    for seed in range(4):
        built[f"slow{seed}"] = build_allexe(d, f"slow{seed}", slow_c(seed))
    return built


@pytest.fixture(scope="module")
def local_binaries(allexes, tmp_path_factory) -> Path:
    """static_binaries/ of a local allready of every allexe: what the cluster must match."""
    cache = tmp_path_factory.mktemp("local-cache")
    proc = run_tool("allready", "-j", "2", *allexes.values(),
                    env={**os.environ, "ALLVM_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    return cache / "static_binaries"


def assert_same_binaries(cache: Path, local: Path, count: int) -> None:
    """`count` static binaries in `cache`, each byte for byte the local build's (cmp)."""
    binaries = sorted((cache / "static_binaries").iterdir())
    assert len(binaries) == count
    for binary in binaries:
        proc = subprocess.run(["cmp", binary, local / binary.name], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def codegen_keys(tasks: list[dict]) -> list[str]:
    return [t["key"] for t in tasks if str(t["key"]).startswith("codegen-")]


def test_binaries_match_a_local_build_and_a_shared_module_compiles_once(
        cluster, allexes, local_binaries, isolated_cache):
    chosen = [allexes[n] for n in ("a", "b", "hello")]
    start = time.time()
    proc = run_tool("allready", "-scheduler", cluster.address, *chosen, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert sorted(proc.stdout.splitlines()) == sorted(
        f"Successfully cached static binary for '{p}'." for p in chosen)
    assert_same_binaries(isolated_cache, local_binaries, 3)
    # Five modules, four distinct: the library module that a and b share compiled once.
    lib = Allexe.open(str(allexes["a"]))
    shared = f"codegen-{object_key(lib, lib.modules[1])}"
    keys = codegen_keys(cluster.tasks_since(start))
    assert len(keys) == 4 and keys.count(shared) == 1
    assert not list((isolated_cache / "objects").iterdir())  # as locally: binaries only
    assert run_tool("alley", allexes["a"]).stdout == "a 21\n"
    assert run_tool("alley", allexes["b"]).stdout == "b 28\n"


def test_scheduler_from_the_environment(cluster, allexes, local_binaries, isolated_cache):
    proc = run_tool("allready", allexes["hello"], timeout=120,
                    env={**os.environ, "ALLVM_SCHEDULER": cluster.address})
    assert (proc.returncode, proc.stderr) == (0, "")
    assert_same_binaries(isolated_cache, local_binaries, 1)


def start_slow_run(cluster, allexes) -> subprocess.Popen:
    """allready of the slow allexes, with SIGINT's default action as from a terminal: a suite run
    as a background job (`make test &` from a script) has SIGINT ignored, and allready, like any
    program, keeps an ignored SIGINT ignored."""
    slow = [allexes[f"slow{i}"] for i in range(4)]
    return subprocess.Popen(["env", "--default-signal=INT", tool_path("allready"), "-scheduler",
                             cluster.address, *slow],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def worker_compiling(cluster, allready: subprocess.Popen) -> str:
    """The address of a worker busy with one of the run's compiles."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and allready.poll() is None:
        for worker, keys in cluster.client.processing().items():
            if any(str(k).startswith("codegen-") for k in keys):
                return worker
        time.sleep(0.05)
    pytest.fail(f"no compile seen running; allready: {allready.poll()}")


def test_a_worker_killed_mid_run_costs_only_time(cluster, allexes, local_binaries,
                                                  isolated_cache):
    allready = start_slow_run(cluster, allexes)
    try:
        victim = worker_compiling(cluster, allready)
        pid = cluster.client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        out, err = allready.communicate(timeout=120)
    finally:
        allready.kill()
    assert (allready.returncode, err) == (0, "")
    assert len(out.splitlines()) == 4
    assert_same_binaries(isolated_cache, local_binaries, 4)
    assert victim not in cluster.workers()
    cluster.wait_for_workers(2)  # its nanny started it again, under a new address


def test_ctrl_c_cancels_the_runs_tasks(cluster, allexes):
    allready = start_slow_run(cluster, allexes)
    try:
        worker_compiling(cluster, allready)
        allready.send_signal(signal.SIGINT)
        allready.communicate(timeout=20)
    finally:
        allready.kill()
    assert allready.returncode == 130

    def run_tasks(dask_scheduler):
        return [k for k in dask_scheduler.tasks if str(k).startswith(("codegen-", "link-"))]

    deadline = time.monotonic() + 10
    while cluster.client.run_on_scheduler(run_tasks):
        assert time.monotonic() < deadline, cluster.client.run_on_scheduler(run_tasks)
        time.sleep(0.1)


def test_a_worker_with_another_toolchain_is_refused(cluster, allexes, local_binaries,
                                                    isolated_cache):
    before = set(cluster.workers())
    odd = cluster.start_worker("worker-odd", "--preload", str(OTHER_CODEGEN))
    try:
        cluster.wait_for_workers(3)
        (address,) = set(cluster.workers()) - before
        chosen = [allexes[n] for n in ("a", "b", "hello")]
        start = time.time()
        proc = run_tool("allready", "-scheduler", cluster.address, *chosen, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == (f"allready: warning: refusing worker {address}: its toolchain "
                               "differs: cpu znver4 (here cpu x86-64)\n")
        assert_same_binaries(isolated_cache, local_binaries, 3)
        tasks = cluster.tasks_since(start)
        assert tasks and all(t["worker"] != address for t in tasks)
        resources = {w: set(info["resources"]) for w, info in cluster.workers().items()}
        assert not resources[address] and all(resources[w] for w in before)
    finally:
        cluster.stop(odd)
    cluster.wait_for_workers(2)


def test_no_worker_with_this_toolchain_is_an_error(cluster, allexes):
    """Seen from a client whose toolchain differs (another optimization level), every worker is
    refused: one line each, then the error, and nothing is sent."""
    client = ("import sys, allvm.cache\n"
              "allvm.cache.CODEGEN_ID = allvm.cache.CODEGEN_ID.replace('; O2', '; O3')\n"
              "from allvm.tools.allready import main\n"
              "sys.exit(main())\n")
    proc = subprocess.run([sys.executable, "-c", client, "-scheduler", cluster.address,
                           allexes["hello"]], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (1, "")
    *refusals, error = proc.stderr.splitlines()
    assert sorted(refusals) == sorted(f"allready: warning: refusing worker {w}: its toolchain "
                                      "differs: O2 (here O3)" for w in cluster.workers())
    assert error.startswith(f"allready: no worker at {cluster.address} has this toolchain (")


def test_a_broken_allexe_fails_alone(cluster, allexes, tmp_path, isolated_cache):
    bad = tmp_path / "bad.allexe"
    bad.write_bytes(b"not an allexe")
    undefined = build_allexe(tmp_path, "undef", "void missing(void);\n"
                             "int main(void) { missing(); return 0; }\n")
    good = [allexes["a"], allexes["hello"]]
    proc = run_tool("allready", "-scheduler", cluster.address, good[0], bad, undefined, good[1],
                    timeout=120)
    assert proc.returncode == 1
    assert sorted(proc.stderr.splitlines()) == sorted([
        f"allready: Could not open '{bad}': empty or invalid allexe",
        "allready: Program used external function 'missing' which could not be resolved!"])
    assert sorted(proc.stdout.splitlines()) == sorted(
        f"Successfully cached static binary for '{p}'." for p in good)
    assert len(list((isolated_cache / "static_binaries").iterdir())) == 2


def test_an_unreachable_scheduler_is_one_line(allexes):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    proc = run_tool("allready", "-scheduler", address, allexes["hello"], timeout=60)
    assert time.monotonic() - start < 15
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (f"allready: cannot reach the scheduler at {address} "
                           "(no answer within 5 s)\n")
    proc = run_tool("allready", "-scheduler", "nowhere", allexes["hello"], timeout=60)
    assert (proc.returncode, proc.stderr) == (
        1, "allready: cannot reach the scheduler at nowhere (missing port number in address "
           "'nowhere')\n")


def test_the_local_path_imports_no_dask(allexes):
    """-j N stays the process pool it was: not even an import of dask on its way."""
    proc = run_tool("allready", "-j", "1", allexes["hello"],
                    env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert "allvm.native.build" in imported  # the profile does list what was imported
    assert not [m for m in imported if m.split(".")[0] in ("dask", "distributed")]
