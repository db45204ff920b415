"""Native code made on a Dask cluster: `allready -scheduler ADDRESS` (an executor, as
allvm.native.executors describes them).

The scheduler and its workers are Dask's own (`dask scheduler`, `dask worker ADDRESS`) on
machines with the same allvm-py installed. The unit of work is one module's code generation,
keyed by the module's object cache key: a module that several allexes share is compiled once per
run (and once for runs sharing the cluster at the same time). The client ships each module's bytes
as they are stored in the zip; the objects stay on the workers, where each allexe's link runs
from them, and only its static binary comes back, into the local cache as a local allready would
store it. The local machine only reads, hashes and stores, so it is not the bottleneck of a big
cluster.

A worker whose toolchain differs (the cache's CODEGEN_ID) would make other code: it is refused.
Every task asks for a Dask resource that only admitted workers carry: a worker plugin, registered
with the scheduler, compares each worker's id to ours as it joins (also one that joins or is
restarted later) and grants the resource on a match. One unit per worker process: llvmlite runs
LLVM under one lock, so a process compiles one module at a time (start workers with
`--nthreads 1 --nworkers N` for N cores).

This module imports `distributed`: only the -scheduler path imports it.
"""

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from distributed import Client, Future, WorkerPlugin, as_completed
from distributed.comm.addressing import get_address_host_port

import allvm.cache
from allvm.allexe import Allexe, ModuleEntry, inflate
from allvm.cache import Cache, object_key, static_binary_key
from allvm.errors import AllvmError
from allvm.native.build import link_in_memory, store_static_binary

# An unreachable scheduler is reported within this many seconds.
CONNECT_SECONDS = 5
# Allexes in flight per admitted worker: enough to keep every worker busy while the client
# stores results, few enough that a 10,000-package run does not hold every module in memory.
ALLEXES_PER_WORKER = 4


def worker_codegen_id() -> str:
    """The codegen id of the process this runs in (on a worker: the worker's toolchain)."""
    return allvm.cache.CODEGEN_ID


def codegen_difference(ours: str, theirs: str) -> str | None:
    """What differs between two codegen ids, in their words (None: the same toolchain)."""
    if ours == theirs:
        return None
    mine, other = ours.split("; "), theirs.split("; ")
    if len(mine) != len(other):
        return f"'{theirs}', here '{ours}'"
    return ", ".join(f"{b} (here {a})" for a, b in zip(mine, other, strict=True) if a != b)


def resource_name(codegen_id: str) -> str:
    """The Dask resource of workers admitted for `codegen_id`."""
    from _blake2 import blake2b

    return "allvm-" + blake2b(codegen_id.encode(), digest_size=8).hexdigest()


class Admission(WorkerPlugin):
    """Runs on every worker, now and as workers join: grants the resource on a matching id."""

    idempotent = True

    def __init__(self, codegen_id: str):
        self.codegen_id = codegen_id
        self.name = resource_name(codegen_id)

    async def setup(self, worker) -> None:
        if codegen_difference(self.codegen_id, worker_codegen_id()) is None:
            await worker.set_resources(**{self.name: 1})


def compile_stored(entry: ModuleEntry, stored: bytes, path: str) -> tuple[bytes, bytes]:
    """On a worker: one module's object and its tag (allvm.codegen.compile_object, optimized),
    from its bytes as stored in `path`."""
    from allvm.codegen import compile_object

    return compile_object(inflate(entry, stored, path), entry.name)


class Cluster:
    """A connection to a scheduler, with this toolchain's workers admitted; `warn` is told, in
    one line each, which workers were refused and why. Leaving the `with` block (at the end, on
    an error or on Ctrl-C) cancels whatever this run still has on the cluster.
    """

    def __init__(self, address: str, warn: Callable[[str], None]):
        self.address = address
        self.client = _connect(address)
        self.futures: set[Future] = set()  # this run's tasks, cancelled when it ends
        self._compiles: dict[str, Future] = {}  # Dask key -> future, for the whole run
        try:
            admitted = self._admit(warn)
        except BaseException:
            self.client.close()
            raise
        self.window = ALLEXES_PER_WORKER * admitted
        self.resources = {resource_name(allvm.cache.CODEGEN_ID): 1}

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.client.cancel(list(self.futures))
        finally:
            self.client.close()

    def _admit(self, warn: Callable[[str], None]) -> int:
        """How many workers are admitted now. The plugin admits them (and later ones); asking
        each worker its id here explains the refusals."""
        ours = allvm.cache.CODEGEN_ID
        ids = self.client.run(worker_codegen_id, on_error="return")
        admitted = 0
        for worker, theirs in sorted(ids.items()):
            if isinstance(theirs, Exception):
                warn(f"refusing worker {worker}: cannot ask its toolchain "
                     f"({type(theirs).__name__}: {theirs})")
            elif (difference := codegen_difference(ours, theirs)) is not None:
                warn(f"refusing worker {worker}: its toolchain differs: {difference}")
            else:
                admitted += 1
        if not admitted:
            raise AllvmError(f"no worker at {self.address} has this toolchain ({ours})"
                             if ids else f"the scheduler at {self.address} has no workers")
        self.client.register_plugin(Admission(ours))
        return admitted

    def build(self, paths: Iterable[str], cache: Cache) -> Iterator[tuple[str, Exception | None]]:
        """Each allexe's static binary into `cache`: (path, None) when it is there, (path, the
        error) when it failed; in the order they finish, at most `window` in flight."""
        if not cache.ensure_dirs():
            raise AllvmError(f"cache directory '{cache.root}' is not usable")
        waiting, linking = deque(paths), {}
        finished = as_completed(loop=self.client.loop)
        while waiting or linking:
            while waiting and len(linking) < self.window:
                path = waiting.popleft()
                try:
                    allexe = Allexe.open(path)
                    target = cache.static_binary_path(static_binary_key(allexe))
                    if cache.entry_tag(target) is not None:
                        yield path, None
                        continue
                    future = self._link(allexe, target)
                except AllvmError as e:
                    yield path, e
                    continue
                linking[future] = (path, target, allexe)
                finished.add(future)
            if linking:
                future = next(finished)
                path, target, allexe = linking.pop(future)
                self.futures.discard(future)
                yield path, _stored(future, cache, target, allexe)

    def _link(self, allexe: Allexe, target: str) -> Future:
        """Submit the allexe's link, after the code generation of its modules."""
        objects = [self._compile(allexe, entry) for entry in allexe.modules]
        return self._submit(f"link-{os.path.basename(target)}", link_in_memory, objects)

    def _compile(self, allexe: Allexe, entry: ModuleEntry) -> Future:
        """The module's code generation: one task per object cache key in this run."""
        key = f"codegen-{object_key(allexe, entry)}"
        if key not in self._compiles:
            self._compiles[key] = self._submit(key, compile_stored, entry,
                                               bytes(allexe.stored_bytes(entry)), allexe.path)
        return self._compiles[key]

    def _submit(self, key: str, function: Callable, *args) -> Future:
        future = self.client.submit(function, *args, key=key, resources=self.resources)
        self.futures.add(future)
        return future


def _connect(address: str) -> Client:
    unreachable = f"cannot reach the scheduler at {address}"
    try:  # first Dask's own parse: a Client given a malformed address lingers at exit
        get_address_host_port(address)
    except ValueError as e:
        raise AllvmError(f"{unreachable} ({e})") from None
    try:
        return Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError):
        raise AllvmError(f"{unreachable} (no answer within {CONNECT_SECONDS} s)") from None


def _stored(future: Future, cache: Cache, target: str, allexe: Allexe) -> Exception | None:
    """Store the finished link's binary (carrying its allexe, as a local build's does); its
    error (remote or local) if there is none."""
    from allvm.native.carry import carried
    from allvm.native.settings import static_settings

    try:
        store_static_binary(cache, target, carried(future.result(), allexe, static_settings()))
    except Exception as e:  # one allexe's failure is its own, as locally
        return e
    return None
