"""The wllvm convention: an ELF section `.llvm_bc` listing each object's bitcode file.

The compiler wrapper gives every object it compiles a `.llvm_bc` section holding the absolute
path of that translation unit's bitcode and a newline. The linker concatenates same-named
sections, so an executable, a shared library or an archive member carries the list of every
translation unit in it. An object assembled natively from `.s`/`.S` records its source path
instead: extraction can then say which code is missing from the IR.

Extraction turns a binary into an allexe: its own bitcode linked into `main.bc`, and each
shared library it needs that carries the section as a library module of its own.
"""

import os

from allvm.allexe import read_input
from allvm.errors import AllvmError
from allvm.ir import is_bitcode
from allvm.packaging.elf import (
    AR_MAGIC,
    DT_NEEDED,
    DT_RPATH,
    DT_RUNPATH,
    Elf,
    archive_members,
    is_elf,
)

SECTION = ".llvm_bc"
SYSTEM_LIBRARY_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib",
                       "/usr/local/lib")
# The platform's libraries (musl's and glibc's): provided by the allexe platform, not modules.
PLATFORM_LIBRARIES = ("libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so", "ld-")
BUILD_TREE_DEPTH = 3  # how deep below the binary's directory shared libraries are looked for


class MissingSection(AllvmError):
    def __init__(self) -> None:
        super().__init__("unable to find WLLVM section")


def record_bitcode_path(object_path: str, recorded: str) -> None:
    """Give a freshly compiled object its `.llvm_bc` section (replacing the file atomically)."""
    with open(object_path, "rb") as f:
        elf = Elf(f.read(), object_path)
    data = elf.with_section(SECTION, os.path.abspath(recorded).encode() + b"\n")
    tmp = f"{object_path}.allvm-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, object_path)


def _section_paths(contents: bytes) -> list[str]:
    return [line for line in contents.decode("utf-8", "replace").splitlines() if line]


def bitcode_paths(path: str) -> list[str]:
    """The paths recorded in a binary, an object, or every member of an `ar` archive."""
    data = read_input(path)
    if data.startswith(AR_MAGIC):
        sections = [Elf(body, f"{path}({name})").section(SECTION)
                    for name, body in archive_members(data, path) if is_elf(body)]
        sections = [s for s in sections if s is not None]
        if not sections:
            raise MissingSection()
        return [p for s in sections for p in _section_paths(s)]
    if not is_elf(data):
        raise MissingSection()
    contents = Elf(data, path).section(SECTION)
    if contents is None:
        raise MissingSection()
    return _section_paths(contents)


class Extraction:
    """What a binary's bitcode amounts to: modules to link, and code that has no bitcode."""

    def __init__(self, binary: str):
        self.binary = binary
        self.main_paths = bitcode_paths(binary)
        self.libraries, self.unfound_libraries = shared_libraries_with_bitcode(binary)
        self.native_only = [p for p in self.all_paths() if not _is_bitcode_file(p)]

    def all_paths(self) -> list[str]:
        return self.main_paths + [p for _, paths in self.libraries for p in paths]

    @property
    def ir_share(self) -> float:
        """The fraction of translation units that are IR (the rest was assembled natively)."""
        total = len(self.all_paths())
        return (total - len(self.native_only)) / total if total else 0.0

    def main_module(self):
        """The binary's own bitcode, linked into one module (the allexe's `main.bc`)."""
        return link_bitcode(self.main_paths, self.binary)

    def library_modules(self) -> list[tuple[str, bytes]]:
        """(entry name, bitcode) per shared library: its path with `.bc` added."""
        return [(library + ".bc", link_bitcode(paths, library).as_bitcode())
                for library, paths in self.libraries]


def _is_bitcode_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return is_bitcode(f.read(4))
    except OSError:
        raise AllvmError(f"Could not open bitcode file '{path}' (was the build cleaned?)") from None


def link_bitcode(paths: list[str], what: str):
    """Link the bitcode files into one module (files that are not bitcode are skipped)."""
    from allvm.deasm import deasm_module
    from allvm.ir import parse_module

    linked = None
    for path in paths:
        if not _is_bitcode_file(path):
            continue
        with open(path, "rb") as f:
            module, _ = deasm_module(parse_module(f.read(), path))
        if linked is None:
            linked = module
        else:
            try:
                linked.link_in(module)
            except RuntimeError as e:
                message = " ".join(str(e).split())
                raise AllvmError(f"linking '{path}' into {what}: {message}") from None
    if linked is None:
        raise AllvmError(f"{what}: no bitcode at all (every object was assembled natively)")
    return linked


def _search_dirs(elf: Elf, binary: str) -> list[str]:
    """Where the dynamic loader would look (rpath/runpath), then the binary's build tree."""
    origin = os.path.dirname(os.path.abspath(binary))
    dirs = []
    for tag, value in elf.dynamic_entries():
        if tag in (DT_RPATH, DT_RUNPATH):
            dirs += [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
                     for d in value.split(":") if d]
    dirs.append(origin)
    for root, subdirs, _ in os.walk(origin):
        depth = root[len(origin):].count(os.sep)
        if depth >= BUILD_TREE_DEPTH:
            subdirs.clear()
        dirs += sorted(os.path.join(root, d) for d in subdirs)
    return dirs + list(SYSTEM_LIBRARY_DIRS)


def find_library(soname: str, dirs: list[str]) -> str | None:
    for d in dirs:
        candidate = os.path.join(d, soname)
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return None


def shared_libraries_with_bitcode(binary: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(library path, its bitcode paths) for every shared library the binary needs,
    directly or through other libraries, that carries the section; and the names of the
    libraries not found. Libraries without the section (libc: the platform) are not part of
    the allexe."""
    found, unfound, seen, queue = [], [], set(), [binary]
    while queue:
        current = queue.pop(0)
        elf = Elf(read_input(current), current)
        needed = [v for tag, v in elf.dynamic_entries() if tag == DT_NEEDED]
        dirs = _search_dirs(elf, current) if needed else []
        for soname in needed:
            library = find_library(soname, dirs)
            if library is None:
                unfound.append(soname)
                continue
            if library in seen:
                continue
            seen.add(library)
            try:
                found.append((library, bitcode_paths(library)))
            except MissingSection:
                continue
            queue.append(library)
    return found, [n for n in unfound if not n.startswith(PLATFORM_LIBRARIES)]
