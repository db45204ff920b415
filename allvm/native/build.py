"""The one build of native code from an allexe: look up → compile the missing modules → link
→ store (allvm.native's pipeline).

Imported on alley's hot path (execute.run_cached links cached objects with it): the compiler
and the platform are imported only by the steps that need them.
"""

import os

from allvm.allexe import Allexe
from allvm.cache import INTERIM_TAG, Cache, object_key, static_binary_key
from allvm.errors import AllvmError
from allvm.native.settings import OPTIMIZED, CodegenSettings


class Build:
    """Native code for one allexe: its objects, linked into an executable in a work directory.

    `settings` is what the objects are compiled with (allvm.native.settings: the JIT path's
    tier, or OPTIMIZED for a static binary). `cache_objects` says whether compiled objects go
    into `objects/` (the JIT path) or stay private (allready: a static binary, no objects).
    Objects already cached with the same settings are used either way.
    """

    def __init__(self, allexe: Allexe, cache: Cache, *, cache_objects: bool,
                 settings: CodegenSettings = OPTIMIZED):
        self.allexe = allexe
        self.cache = cache
        self.settings = settings
        self.cache_usable = cache.ensure_dirs()
        self.cache_objects = cache_objects and self.cache_usable
        self._workdir = None
        self.paths, self.needs, self.missing = self._lookup()

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

    def _lookup(self) -> tuple[list[str], list, list[int]]:
        """Every module's object path in the cache, what it needs from the platform if the
        object is cached there, and the modules still to compile."""
        from allvm.platform import Needs

        paths, needs, missing = [], [], []
        for index, entry in enumerate(self.allexe.modules):
            path = self.cache.object_path(
                object_key(self.allexe, entry, self.settings.codegen_id))
            tag = self.cache.entry_tag(path) if self.cache_usable else None
            paths.append(path if tag is None else self._hold(path, index))
            needs.append(Needs.from_tag(tag) if tag is not None else None)
            if tag is None:
                missing.append(index)
        return paths, needs, missing

    def _hold(self, path: str, index: int) -> str:
        """A hard link in the work directory to the cached object at `path`: the cache's limit
        may evict the entry before the link step reads it, never the file linked here."""
        held = os.path.join(self.workdir, f"{index}.o")
        try:
            os.link(path, held)
        except OSError:
            return path
        return held

    def objects(self) -> tuple[list[str], object]:
        """Paths of every module's object, in module order, and what the program needs from
        the platform (an allvm.platform.Needs; imported late: alley's hot path imports this
        module)."""
        from allvm.platform import program_needs

        if self.missing:
            self._compile()
        return self.paths, program_needs(self.needs)

    def _compile(self) -> None:
        from allvm.codegen import check_bitcode_target, compile_module
        from allvm.parallel import in_parallel

        indices, self.missing = self.missing, []
        paths = self.paths
        jobs = [(self.allexe.read_module(self.allexe.modules[i]), self.allexe.modules[i].name,
                 self.settings) for i in indices]
        for bitcode, name, _ in jobs:  # another architecture: refused before anything compiles
            check_bitcode_target(bitcode, name)
        for i, (obj, needs) in zip(indices, in_parallel(compile_module, jobs), strict=True):
            self.needs[i] = needs
            if not (self.cache_objects and self.cache.put(paths[i], obj, tag=needs.tag())):
                paths[i] = os.path.join(self.workdir, f"{i}.o")
                try:
                    with open(paths[i], "wb") as f:
                        f.write(obj)
                except OSError as e:  # e.g. the disk filled up since the cache was checked
                    raise AllvmError(f"could not write '{paths[i]}': {e.strerror}") from None

    def link(self) -> str:
        """Link every module into one executable in the work directory; returns its path."""
        from allvm.platform import link_executable

        objects, needs = self.objects()
        output = os.path.join(self.workdir, "program")
        link_executable(objects, needs, output)
        return output


def build_static_binary(allexe: Allexe, cache: Cache) -> str:
    """The allexe's optimized static binary in the cache (built if missing, or if only the
    fast tier's stand-in, INTERIM_TAG, is there); its path."""
    path = cache.static_binary_path(static_binary_key(allexe))
    if cache.entry_tag(path) not in (None, INTERIM_TAG):
        return path
    with Build(allexe, cache, cache_objects=False) as build:
        if not build.cache_usable:
            raise AllvmError(f"cache directory '{cache.root}' is not usable")
        with open(build.link(), "rb") as f:
            binary = f.read()
    store_static_binary(cache, path, binary)
    return path


def store_static_binary(cache: Cache, path: str, binary: bytes) -> None:
    """Put a static binary into the cache at `path` (its static_binary_key's path)."""
    if not cache.put(path, binary, executable=True):
        raise AllvmError(f"could not write to the cache directory '{cache.root}'")
