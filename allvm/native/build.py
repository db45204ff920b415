"""The one build of native code from an allexe: look up → compile the missing modules → link
→ store (allvm.native's pipeline).

Imported on alley's hot path (execute.run_cached links cached objects with it): the compiler
and the platform are imported only by the steps that need them.
"""

import os

from allvm.allexe import Allexe, ModuleEntry
from allvm.cache import INTERIM_TAG, Cache, object_key, static_binary_key
from allvm.errors import AllvmError
from allvm.native.settings import OPTIMIZED, CodegenSettings, static_settings

# The seal's tag length is two bytes: an object whose tag is longer is used, never cached.
MAX_TAG = 0xFFFF


class Build:
    """Native code for one allexe: its objects, linked into an executable in a work directory.

    `settings` is what the objects are compiled with (allvm.native.settings: the JIT path's
    tier, OPTIMIZED for a static binary, INPROCESS for the in-process JIT). `cache_objects` says
    whether compiled objects go into `objects/` (the JIT paths) or stay private (allready: a
    static binary, no objects). Objects already cached with the same settings are used either
    way. Each object has its tag: what linking or loading it needs (allvm.codegen).
    """

    def __init__(self, allexe: Allexe, cache: Cache, *, cache_objects: bool,
                 settings: CodegenSettings = OPTIMIZED):
        self.allexe = allexe
        self.cache = cache
        self.settings = settings
        self.cache_usable = cache.ensure_dirs()
        self.cache_objects = cache_objects and self.cache_usable
        self._workdir = None
        self._compiled: dict[int, bytes] = {}  # objects compiled by this build, by module
        self.paths, self.tags, self.missing = self._lookup()

    def __enter__(self) -> "Build":
        return self

    def __exit__(self, *exc) -> None:
        if self._workdir is not None:
            self.cache.remove_workdir(self._workdir)

    @property
    def workdir(self) -> str:
        """The build's scratch directory, made when first needed."""
        if self._workdir is None:
            self._workdir = self.cache.make_workdir()
        return self._workdir

    def _lookup(self) -> tuple[list[str], list[bytes | None], list[int]]:
        """Every module's object path in the cache, its tag if the object is cached there, and
        the modules still to compile."""
        paths, tags, missing = [], [], []
        for index, entry in enumerate(self.allexe.modules):
            path = object_path(self.allexe, entry, self.cache, self.settings)
            tag = self.cache.entry_tag(path) if self.cache_usable else None
            paths.append(path if tag is None else self._hold(path, index))
            tags.append(tag)
            if tag is None:
                missing.append(index)
        return paths, tags, missing

    def _hold(self, path: str, index: int) -> str:
        """A hard link in the work directory to the cached object at `path`: the cache's limit
        may evict the entry before the link step reads it, never the file linked here."""
        held = os.path.join(self.workdir, f"{index}.o")
        try:
            os.link(path, held)
        except OSError:
            return path
        return held

    def objects(self) -> tuple[list[str], list[bytes]]:
        """Paths of every module's object, in module order, and their tags."""
        if self.missing:
            self._compile()
        return self.paths, self.tags

    def _compile(self) -> None:
        from allvm.codegen import check_bitcode_target, compile_object
        from allvm.parallel import in_parallel

        indices, self.missing = self.missing, []
        jobs = [(self.allexe.read_module(self.allexe.modules[i]), self.allexe.modules[i].name,
                 self.settings) for i in indices]
        for bitcode, name, _ in jobs:  # another architecture: refused before anything compiles
            check_bitcode_target(bitcode, name)
        for i, (obj, tag) in zip(indices, in_parallel(compile_object, jobs), strict=True):
            self.tags[i], self._compiled[i] = tag, obj
            if not (self.cache_objects and len(tag) <= MAX_TAG
                    and self.cache.put(self.paths[i], obj, tag=tag)):
                self.paths[i] = write_object(self.workdir, i, obj)

    def loaded(self) -> list[tuple[bytes, bytes]]:
        """Every module's object and tag in memory, in module order (the in-process JIT loads
        them so)."""
        from allvm.cache import unseal

        paths, tags = self.objects()
        loaded = []
        for i, (path, tag) in enumerate(zip(paths, tags, strict=True)):
            obj = self._compiled.get(i)
            if obj is None:  # cached: `path` holds the sealed entry, which never changes
                with open(path, "rb") as f:
                    entry = unseal(f.read())
                if entry is None:
                    raise AllvmError(f"the cached object '{path}' is damaged")
                obj = entry[0]
            loaded.append((obj, tag))
        return loaded

    def link(self) -> str:
        """Link every module into one executable in the work directory; returns its path."""
        output = os.path.join(self.workdir, "program")
        link_objects(*self.objects(), output)
        return output


def object_path(allexe: Allexe, entry: ModuleEntry, cache: Cache,
                settings: CodegenSettings) -> str:
    """Where the cache keeps the module's object compiled with `settings`."""
    return cache.object_path(object_key(allexe, entry, settings.codegen_id))


def cached_tag(allexe: Allexe, entry: ModuleEntry, cache: Cache,
               settings: CodegenSettings) -> bytes | None:
    """The tag of the module's object cached with `settings`; None when it is not cached."""
    return cache.entry_tag(object_path(allexe, entry, cache, settings))


def write_object(directory: str, index: int, obj: bytes) -> str:
    """Module `index`'s object as a file in `directory` (for the link); its path."""
    path = os.path.join(directory, f"{index}.o")
    try:
        with open(path, "wb") as f:
            f.write(obj)
    except OSError as e:  # e.g. the disk filled up since the cache was checked
        raise AllvmError(f"could not write '{path}': {e.strerror}") from None
    return path


def link_objects(paths: list[str], tags: list[bytes], output: str) -> None:
    """The one link of every path: a program's objects, in module order, with what their tags
    say the program needs from the platform, into the executable `output`."""
    from allvm.platform import Needs, link_executable, program_needs

    link_executable(paths, program_needs([Needs.from_tag(tag) for tag in tags]), output)


def link_in_memory(compiled: list[tuple[bytes, bytes]]) -> bytes:
    """The executable of objects in memory, each with its tag, in module order (a cluster
    worker links an allexe so): linked as a local Build links them."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="allvm-link-") as workdir:
        paths = [write_object(workdir, i, obj) for i, (obj, _) in enumerate(compiled)]
        output = os.path.join(workdir, "program")
        link_objects(paths, [tag for _, tag in compiled], output)
        with open(output, "rb") as f:
            return f.read()


def build_static_binary(allexe: Allexe, cache: Cache) -> str:
    """The allexe's optimized static binary in the cache (built if missing, or if only the
    fast tier's stand-in, INTERIM_TAG, is there), made with the static settings chosen here
    (static_settings: the CPU, whether it carries its allexe); its path."""
    from allvm.native.carry import carried

    settings = static_settings()
    path = cache.static_binary_path(static_binary_key(allexe, settings.codegen_id))
    if cache.entry_tag(path) not in (None, INTERIM_TAG):
        return path
    with Build(allexe, cache, cache_objects=False, settings=settings) as build:
        if not build.cache_usable:
            raise AllvmError(f"cache directory '{cache.root}' is not usable")
        with open(build.link(), "rb") as f:
            binary = f.read()
    store_static_binary(cache, path, carried(binary, allexe, settings))
    return path


def store_static_binary(cache: Cache, path: str, binary: bytes, tag: bytes = b"") -> None:
    """Put a static binary into the cache at `path` (its static_binary_key's path), with
    `tag` (what made it: allvm/cache.py's Entries)."""
    if not cache.put(path, binary, tag=tag, executable=True):
        raise AllvmError(f"could not write to the cache directory '{cache.root}'")
