"""allvm-debian build -scheduler: packages as tasks on a real Dask cluster (`dask scheduler` and
two `dask worker` processes on free loopback ports), against a local run of the same package.

The package is rs (a small C program with a test suite: about 20 s with its tests on two idle
cores), built once locally and once on the cluster, side by side, and once more (without tests)
with a worker killed under it; the module's other runs fail fast (an unknown package, an
unreachable scheduler, no deb-src) or are interrupted early (hello). About 4 minutes in all on
two cores shared with other builds."""

import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import run_tool, tool_path
from test_cluster import DaskCluster, free_port, two_workers

PACKAGE = "rs"
UNKNOWN = "no-such-package-xyz"
UNKNOWN_LINE = (f"allvm-debian: {UNKNOWN}: unknown package (no source package of that name in "
                "bookworm's deb-src)")
# A case of the list's beside Debian's tests: a worker that did not read the list would not run it.
LIST = f"""[{PACKAGE}.test]
why = "a case of ours beside Debian's tests (the workers read the list)"
[[{PACKAGE}.test.cases]]
name = "two-columns"
run = "printf '1 2 3 4\\n' | {PACKAGE} 2 2"
stdout = "1  2\\n3  4\\n"
"""
# What differs between two runs of one package however they ran: how long each step took, and
# what `apt-get build-dep` had left to install on that machine at that moment.
MACHINE_FIELDS = {"seconds", "build_seconds", "build_deps_installed"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with two_workers(tmp_path_factory.mktemp("dask")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """A local run of the package and, at the same time, a cluster run of it beside a package
    that fails, both with -keep and a package list that adds a test case: (local OUT, cluster
    OUT, the cluster run's process, the package keys on the scheduler once the failed
    package's results were in)."""
    local, remote = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("cluster")
    package_list = tmp_path_factory.mktemp("list") / "packages.toml"
    package_list.write_text(LIST)
    options = ("-keep", "-list", str(package_list))
    here = subprocess.Popen([tool_path("allvm-debian"), "build", *options, "-o", local, PACKAGE],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    there = subprocess.Popen([tool_path("allvm-debian"), "build", "-scheduler", cluster.address,
                              *options, "-o", remote, UNKNOWN, PACKAGE],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        held = keys_once_received(cluster, remote / UNKNOWN / "report.json", there)
        stdout, stderr = there.communicate(timeout=900)
        proc = subprocess.CompletedProcess(there.args, there.returncode, stdout, stderr)
        out, err = here.communicate(timeout=900)
    finally:
        here.kill()
        there.kill()
    assert here.returncode == 0, out[-3000:] + err
    return local, remote, proc, held


def package_keys(cluster: DaskCluster) -> list[str]:
    return cluster.client.run_on_scheduler(
        lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks
                                if str(k).startswith("package-")])


def keys_once_received(cluster: DaskCluster, report: Path, run: subprocess.Popen) -> list[str]:
    """The package keys the scheduler holds once the client has written `report`, given a few
    seconds to release that package's."""
    deadline = time.monotonic() + 300
    while not report.exists():
        assert run.poll() is None and time.monotonic() < deadline, run.poll()
        time.sleep(0.1)
    settled = time.monotonic() + 10
    while True:
        keys = package_keys(cluster)
        if not any(k.startswith(f"package-{UNKNOWN}-") for k in keys) \
                or time.monotonic() > settled:
            return keys
        time.sleep(0.1)


def comparable(value, out: Path):
    """A report without its machine's fields, its paths relative to OUT."""
    if isinstance(value, dict):
        return {k: comparable(v, out) for k, v in value.items() if k not in MACHINE_FIELDS}
    if isinstance(value, list):
        return [comparable(item, out) for item in value]
    return value.replace(str(out), "OUT") if isinstance(value, str) else value


def report(out: Path, package: str) -> dict:
    return json.loads((out / package / "report.json").read_text())


def test_the_report_and_allexes_are_a_local_runs(runs):
    local, remote, *_ = runs
    ours, theirs = report(remote, PACKAGE), report(local, PACKAGE)
    assert ours["built"]
    for mode in ("native", "jit", "static"):  # Debian's one test and the list's case
        assert (ours["tests"][mode]["passed"], ours["tests"][mode]["failed"]) == (2, 0), mode
    assert comparable(ours, remote) == comparable(theirs, local)
    for program in ours["programs"]:  # the client's paths, where the files are
        assert program["allexe"].startswith(f"{remote}/{PACKAGE}/allexes/")
        proc = subprocess.run(["cmp", program["allexe"],
                               program["allexe"].replace(str(remote), str(local))])
        assert proc.returncode == 0
    assert "dpkg-buildpackage" in (remote / PACKAGE / "build.log").read_text()


def test_keep_brings_the_build_tree_back(runs):
    local, remote, *_ = runs
    assert {p.name for p in (remote / PACKAGE).iterdir()} == {
        p.name for p in (local / PACKAGE).iterdir()} >= {"src", "root", "cache-static"}
    tree = sorted(str(p.relative_to(remote)) for p in (remote / PACKAGE / "src").rglob("*"))
    assert tree == sorted(str(p.relative_to(local)) for p in (local / PACKAGE / "src").rglob("*"))


def test_a_failing_package_stops_none_of_the_others(runs):
    _, remote, proc, _ = runs
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [UNKNOWN_LINE], proc.stderr
    assert report(remote, UNKNOWN)["error"] == UNKNOWN_LINE.removeprefix("allvm-debian: ")
    table = (remote / "report.md").read_text()
    assert f"| {PACKAGE} |" in table and f"| {UNKNOWN} |" in table
    assert proc.stdout.splitlines()[-1] == (f"1 of 2 package(s) built; report: "
                                            f"{remote}/report.md")


def test_a_packages_results_leave_the_cluster_once_received(runs):
    """A 10,000-package run must not hold every package's archive on the workers."""
    *_, held = runs
    assert not [k for k in held if k.startswith(f"package-{UNKNOWN}-")], held
    assert [k for k in held if k.startswith(f"package-{PACKAGE}-")], held  # still building


def test_the_workers_progress_comes_to_the_client(runs):
    _, remote, proc, _ = runs
    lines = proc.stdout.splitlines()
    log = remote / PACKAGE / "build.log"
    assert f"[{PACKAGE}] building with dpkg-buildpackage (log: {log})" in lines
    assert f"[{PACKAGE}] testing: static" in lines
    assert sum("package(s) built" in line for line in lines) == 1  # the workers' own: not sent


def test_scheduler_from_the_environment(cluster, tmp_path):
    start = time.time()
    proc = run_tool("allvm-debian", "build", "-o", tmp_path, UNKNOWN, timeout=300,
                    env={**os.environ, "ALLVM_SCHEDULER": cluster.address})
    assert (proc.returncode, proc.stderr.splitlines()) == (1, [UNKNOWN_LINE])
    keys = [str(t["key"]) for t in cluster.tasks_since(start)]
    assert [k for k in keys if k.startswith(f"package-{UNKNOWN}-")], keys


def read_lines(proc: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout],
                     daemon=True).start()
    return lines


def wait_for(lines: queue.Queue, text: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if text in line:
            return


def working_in(directory: Path) -> list[str]:
    """The processes whose working directory is in `directory`."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            target = os.readlink(cwd)
        except OSError:
            continue  # gone
        if target.startswith(f"{directory}/"):
            found.append(f"{cwd.parent.name}: {target}")
    return found


def builds_left(cluster: DaskCluster) -> list[str]:
    """The package tasks the scheduler holds, the scratch directories of builds on the workers,
    and the processes working in them."""
    return (package_keys(cluster)
            + [str(p) for p in cluster.directory.glob("worker-*/**/allvm-debian-*")]
            + [w for w in working_in(cluster.directory) if "/allvm-debian-" in w])


def start_hello(cluster: DaskCluster, out: Path) -> tuple[subprocess.Popen, queue.Queue]:
    """A cluster run of hello, its SIGINT's default action as from a terminal (see
    tests/test_cluster.py), and the queue of its output lines."""
    proc = subprocess.Popen(["env", "--default-signal=INT", tool_path("allvm-debian"), "build",
                             "-scheduler", cluster.address, "-no-test", "-o", out, "hello"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, read_lines(proc)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl_c", "client_killed"])
def test_the_end_of_the_client_stops_the_builds_on_the_workers(cluster, tmp_path, sig):
    """Ctrl-C, or a client killed (the scheduler releases what it held); hello's build is a
    minute or more, so it is well under way when the signal comes."""
    proc, lines = start_hello(cluster, tmp_path)
    try:
        wait_for(lines, "[hello] building with dpkg-buildpackage", 300)
        assert builds_left(cluster)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        err = proc.stderr.read()
    finally:
        proc.kill()
    if sig == signal.SIGINT:
        assert (proc.returncode, err) == (130, "allvm-debian: interrupted\n")
    deadline = time.monotonic() + 30  # well before the build would end by itself
    while left := builds_left(cluster):  # the worker's build stopped and cleaned up after it
        assert time.monotonic() < deadline, left
        time.sleep(0.5)


def test_a_worker_killed_mid_build_costs_only_time(cluster, tmp_path):
    """Its nanny starts it again; Dask runs the package again, and the run ends as if nothing
    had happened."""
    proc = subprocess.Popen([tool_path("allvm-debian"), "build", "-scheduler", cluster.address,
                             "-no-test", "-o", tmp_path, PACKAGE],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(read_lines(proc), f"[{PACKAGE}] building with dpkg-buildpackage", 300)
        (worker,) = (w for w, keys in cluster.client.processing().items()
                     if any(str(k).startswith(f"package-{PACKAGE}-") for k in keys))
        os.kill(cluster.client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
        proc.wait(timeout=600)
        err = proc.stderr.read()
    finally:
        proc.kill()
    assert (proc.returncode, err) == (0, "")
    r = report(tmp_path, PACKAGE)
    assert r["built"] and r["allexes"] == 1
    assert os.path.exists(r["programs"][0]["allexe"])
    cluster.wait_for_workers(2)


def test_a_worker_killed_mid_build_leaves_no_build_behind(tmp_path):
    """A worker with no nanny (nothing restarts it or clears its directory) killed during
    hello's build: what its build started stops within seconds, where hello's build would go
    on for a minute or more. Then Ctrl-C ends the run, which has no worker left."""
    cluster = DaskCluster(tmp_path)
    try:
        cluster.start_scheduler()
        cluster.start_worker("worker", "--no-nanny")
        cluster.connect()
        cluster.wait_for_workers(1)
        (worker,) = cluster.workers()
        proc, lines = start_hello(cluster, tmp_path / "out")
        try:
            wait_for(lines, "[hello] building with dpkg-buildpackage", 300)
            (scratch,) = (tmp_path / "worker").glob("**/allvm-debian-*")
            deadline = time.monotonic() + 60
            while not working_in(scratch):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
            os.kill(cluster.client.run(os.getpid, workers=[worker])[worker], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while left := working_in(scratch):
                assert time.monotonic() < deadline, left
                time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            proc.kill()
    finally:
        cluster.stop_all()
    assert proc.returncode == 130


def test_a_worker_without_deb_src_says_so(tmp_path):
    """A cluster of one worker whose apt has no deb-src (APT_CONFIG, set as the worker
    starts): the package's line says what and which worker."""
    (tmp_path / "parts").mkdir()
    (tmp_path / "sources.list").write_text("")
    (tmp_path / "apt.conf").write_text(f'Dir::Etc::sourcelist "{tmp_path}/sources.list";\n'
                                       f'Dir::Etc::sourceparts "{tmp_path}/parts";\n')
    preload = tmp_path / "no_deb_src.py"
    preload.write_text(f"import os\nos.environ['APT_CONFIG'] = {str(tmp_path / 'apt.conf')!r}\n")
    cluster = DaskCluster(tmp_path)
    try:
        cluster.start_scheduler()
        cluster.start_worker("worker", "--preload", str(preload))
        cluster.connect()
        cluster.wait_for_workers(1)
        (worker,) = cluster.workers()
        proc = run_tool("allvm-debian", "build", "-scheduler", cluster.address, "-o",
                        tmp_path / "out", PACKAGE, timeout=300)
    finally:
        cluster.stop_all()
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"allvm-debian: {PACKAGE}: no deb-src access: apt has no source index (add a deb-src "
        f"entry and run apt-get update) (on {worker})"]
    assert report(tmp_path / "out", PACKAGE)["built"] is False


def test_a_task_that_fails_as_a_task_is_its_packages_error(cluster, tmp_path):
    """A task's own failure (on the cluster, a worker lost again and again: KilledWorker) is
    the package's report and error line, as a failed build is."""
    from allvm.packaging.debian_cluster import received

    future = cluster.client.submit(lambda: 1 / 0, key="fails-as-a-task")
    assert isinstance(future.exception(timeout=60), ZeroDivisionError)
    r = received("lost", future, tmp_path)
    assert r["error"] == ("lost: the cluster's task failed (ZeroDivisionError: division by "
                          "zero)")
    assert report(tmp_path, "lost") == r


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    proc = run_tool("allvm-debian", "build", "-scheduler", address, "-o", tmp_path / "out",
                    PACKAGE, timeout=60)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (f"allvm-debian: cannot reach the scheduler at {address} "
                           "(no answer within 5 s)\n")
    assert not (tmp_path / "out").exists()


def test_a_machine_that_cannot_install_says_so(tmp_path):
    """`apt-get build-dep` run by a user who is not root, as on a worker started without root:
    the package's error line says so, and where. (Python starts as root, so that it can read
    its own installation, and then drops to nobody.)"""
    scratch = Path(tempfile.mkdtemp(prefix="allvm-nobody-"))
    try:
        os.chown(scratch, 65534, 65534)
        log = scratch / "build.log"
        code = ("import os, sys\nfrom pathlib import Path\n"
                "from allvm.packaging.debian_build import PackageError, install_build_deps\n"
                "os.setgid(65534)\nos.setuid(65534)\n"
                f"try:\n    install_build_deps({PACKAGE!r}, Path({str(log)!r}))\n"
                "except PackageError as e:\n    sys.exit(str(e))\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120)
        assert proc.stderr == (f"apt-get build-dep {PACKAGE} failed on {socket.gethostname()}: "
                               f"not root, and installing build-dependencies needs root "
                               f"(see {log})\n")
        assert "are you root?" in log.read_text()
    finally:
        subprocess.run(["rm", "-rf", scratch])


def test_the_local_path_imports_no_dask(tmp_path):
    proc = run_tool("allvm-debian", "build", "-o", tmp_path, UNKNOWN,
                    env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == UNKNOWN_LINE
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")]
    assert "allvm.packaging.debian_package" in imported
    assert not [m for m in imported if m.split(".")[0] in ("dask", "distributed")]


def test_help_names_the_scheduler():
    proc = run_tool("allvm-debian", "--help")
    assert "-scheduler ADDRESS" in proc.stdout and "$ALLVM_SCHEDULER" in proc.stdout


def test_results_are_unpacked_whole(tmp_path):
    """A broken archive (a stop while unpacking is one) leaves no report.json behind; a good
    one lands in OUT/PKG with nothing left beside it."""
    from allvm.packaging.debian_cluster import unpack

    out = tmp_path / "pkg"
    out.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("report.json", b"{}"), ("allexes/a.allexe", b"x" * 100_000)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = buffer.getvalue()
    with pytest.raises((tarfile.TarError, EOFError, OSError)):
        unpack(archive[:len(archive) // 2], out)
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
    unpack(archive, out)
    assert sorted(p.name for p in out.iterdir()) == ["allexes", "report.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
