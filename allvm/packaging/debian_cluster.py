"""`allvm-debian build -scheduler ADDRESS`: packages built on a Dask cluster, one task each
(an executor, as allvm.packaging.debian_executors describes them).

The cluster is `allready -scheduler`'s (allvm.cluster.Cluster: the same connection, the same
admission of workers with this toolchain, the run's tasks cancelled when it ends). A package's
task runs on a worker what a local run does for it: `allvm-debian build -j 1` of that one
package (allvm.packaging.debian_package.build_package, make using the worker's cores) in a
scratch directory of the worker. It sends back the package's output directory as one archive
(allexes/, libs/, report.json, build.log; with -keep also the build tree, the unpacked .debs
and the caches), with every path of the scratch directory in report.json made the client's
OUT/PKG. The client unpacks it into OUT/PKG, so OUT need not be shared storage and the results
are a local run's. Its progress lines reach the client on a Dask topic of this run.

A worker needs what a local run needs: root (`apt-get build-dep`; a worker that cannot
install says so in the package's error line) and bookworm's deb-src (set up where it is
missing, as locally). A task whose key is cancelled (Ctrl-C, or a client gone) interrupts its
build as Ctrl-C does locally, by SIGINT to the build's process group: the build tree's native
programs are put back and nothing keeps building on the workers. So does a worker's death
(WATCHDOG): Dask runs the task again on another worker, and the dead one's build stops.

This module imports `distributed`: only the -scheduler path imports it.
"""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from distributed import Future, as_completed, get_worker

from allvm.cluster import Cluster
from allvm.packaging import debian_build as db
from allvm.packaging.debian_package import new_report, write_report

# How often a running task looks whether its key is still wanted.
POLL_SECONDS = 0.5
# How long an interrupted build has to put its build tree back before it is killed.
STOP_SECONDS = 60
# A Dask key's states on a worker while its task runs (any other: cancelled or released).
RUNNING = ("executing", "long-running")
# `sh -c WATCHDOG sh COMMAND...`: COMMAND, with a shell beside it in its process group that
# reads its standard input, a pipe only the worker writes to, and interrupts the group as
# Ctrl-C would at the pipe's end: when the worker's process is gone (killed mid-build: Dask
# runs the task again elsewhere), or after COMMAND, once the task closes it.
WATCHDOG = ('exec 3<&0; (cat <&3 >/dev/null; kill -INT 0) >/dev/null 2>&1 & '
            'exec "$@" </dev/null 3<&-')  # (a background job's own stdin is /dev/null)


class PackageCluster:
    """Packages as tasks on the cluster of the scheduler at `address`, each built with the
    package list at `package_list` (on the workers, at the same path); `warn` hears of the
    workers refused (allvm.cluster.Cluster)."""

    def __init__(self, address: str, warn: Callable[[str], None],
                 package_list: Path | None = None):
        self.cluster = Cluster(address, warn)
        self.list_options = ("-list", str(package_list)) if package_list else ()
        self.topic = f"allvm-debian-{uuid.uuid4().hex}"  # this run's progress lines only

    def __enter__(self) -> "PackageCluster":
        self.cluster.client.subscribe_topic(self.topic, _say)
        return self

    def __exit__(self, *exc) -> None:
        self.cluster.__exit__(*exc)

    def build(self, names: Iterable[str], out_root: Path, *, test: bool,
              keep: bool) -> Iterator[dict]:
        """Each package's report, once its results are in OUT/PKG, in the order they finish."""
        options = [*(() if test else ("-no-test",)), *(("-keep",) if keep else ()),
                   *self.list_options]
        futures: dict[Future, str] = {}
        for name in names:
            future = self.cluster.client.submit(
                build_remote, name, str(out_root), options, self.topic,
                key=f"package-{name}-{self.topic[-12:]}", resources=self.cluster.resources)
            self.cluster.futures.add(future)
            futures[future] = name
        for future in as_completed(futures, loop=self.cluster.client.loop):
            self.cluster.futures.discard(future)
            report = received(futures.pop(future), future, out_root)
            future.release()  # its archive leaves the worker's memory
            yield report


def _say(event: tuple) -> None:
    """A worker's progress line, printed here (the client's event loop)."""
    print(event[1], flush=True)


def received(name: str, future: Future, out_root: Path) -> dict:
    """The task's results unpacked into OUT/PKG; its report. A task that failed as a task (its
    worker lost again and again) is the package's error, as a failed build is."""
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    db.clean_work(out, keep=False)
    try:
        archive = future.result()
    except Exception as e:  # this package's failure only
        report = new_report(name)
        report["error"] = f"{name}: the cluster's task failed ({type(e).__name__}: {e})"
        write_report(out, report)
        return report
    unpack(archive, out)
    return json.loads((out / "report.json").read_text())


def unpack(archive: bytes, out: Path) -> None:
    """The archive's files into `out`, report.json last: a stop while unpacking leaves no
    report, so the package is not taken as done (a resumed sample builds it again)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(staging, filter="tar")
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == "report.json"):
            entry.replace(out / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- on a worker ------------------------------------------------------------------------------

def build_remote(name: str, out_root: str, options: list[str], topic: str) -> bytes:
    """On a worker: the package built as `allvm-debian build OPTIONS PKG` builds it here, its
    output directory as a gzipped tar whose paths are the client's (OUT/PKG)."""
    worker = get_worker()
    key = worker.get_current_task()
    command = ["sh", "-c", WATCHDOG, "sh", str(db.BIN / "allvm-debian"), "build", "-j", "1",
               *options, "-o"]
    env = dict(os.environ)
    env.pop("ALLVM_SCHEDULER", None)  # the worker's build is a local one, its allready too
    with (tempfile.TemporaryDirectory(prefix="allvm-debian-", dir=worker.local_directory)
          as scratch, tempfile.TemporaryFile("w+") as errors):
        old, new = f"{scratch}/", f"{out_root}/"
        child = subprocess.Popen([*command, scratch, name], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=errors, text=True, env=env,
                                 start_new_session=True)
        forward = threading.Thread(target=_forward, daemon=True,
                                   args=(worker, topic, child.stdout, old, new))
        forward.start()
        status = _wait(child, lambda: _running(worker, key))
        child.stdin.close()  # the watchdog's end
        forward.join()
        package = Path(scratch) / name
        try:
            report = json.loads((package / "report.json").read_text())
        except FileNotFoundError:  # the command failed before the build (no deb-src access)
            errors.seek(0)
            lines = errors.read().splitlines() or [f"allvm-debian exited with {status}"]
            report = new_report(name)
            report["error"] = f"{lines[-1].removeprefix('allvm-debian: ')} (on {worker.address})"
            package.mkdir(exist_ok=True)
        write_report(package, relocated(report, old, new))
        return _archive(package)


def relocated(value, old: str, new: str):
    """A report with the path prefix `old` in its strings made `new`."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [relocated(item, old, new) for item in value]
    if isinstance(value, dict):
        return {relocated(k, old, new): relocated(v, old, new) for k, v in value.items()}
    return value


def _forward(worker, topic: str, lines: Iterable[str], old: str, new: str) -> None:
    """The build's progress lines (`[PKG] ...`) to the client; not its summary, which is the
    client's to say."""
    for line in lines:
        if line.startswith("["):
            worker.log_event(topic, line.rstrip("\n").replace(old, new))


def _running(worker, key) -> bool:
    """Whether the worker still runs the task of `key` (not cancelled, not released)."""
    task = worker.state.tasks.get(key)
    return task is not None and task.state in RUNNING


def _wait(child: subprocess.Popen, wanted: Callable[[], bool]) -> int:
    """The child's exit status; a child no longer wanted is interrupted as Ctrl-C would
    interrupt it (SIGINT to its process group), then killed if it does not stop."""
    while wanted():
        try:
            return child.wait(POLL_SECONDS)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # (it has just ended by itself)
        os.killpg(child.pid, signal.SIGINT)
    try:
        return child.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        return child.wait()


def _archive(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()
