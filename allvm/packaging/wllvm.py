"""The wllvm convention: an ELF section `.llvm_bc` listing each object's bitcode file.

The compiler wrapper gives every object it compiles a `.llvm_bc` section holding the absolute
path of that translation unit's bitcode and a newline. The linker concatenates same-named
sections, so an executable, a shared library or an archive member carries the list of every
translation unit in it. An object assembled natively from `.s`/`.S` records its source path
instead: extraction can then say which code is missing from the IR.

Extraction turns a binary into an allexe: its own bitcode linked into `main.bc`, and each
shared library it needs that carries the section as a library module of its own.

Which file a needed library (DT_NEEDED) is: the one the binary was linked against wins over a
system library of the same soname. The search order: the binary's rpath/runpath, the
directories the caller names (a build's LD_LIBRARY_PATH, an unpacked package's library
directories), `$LD_LIBRARY_PATH`, the `-L` directories the compiler wrapper recorded at the
link (section `.llvm_bc_libdirs`), the binary's build tree, then the system's directories.

A needed library without bitcode that lies in a system directory (Debian's libz.so.1) is a
*native library*: on the gnu target it is recorded in main.bc's `!llvm.dependent-libraries`
(LLVM's mechanism: code generation puts it in the object's `.deplibs` section, which lld links
against), by its path in the system directory (`/lib/x86_64-linux-gnu/libz.so.1`: zig's driver
gives lld no `-L` search directory but `/`, so a bare soname would not be found), and the
program gets it as DT_NEEDED by its soname. Any library left out of the allexe (not found, or
without bitcode and not recordable) is reported by the caller as a warning, never dropped
silently.
"""

import os

from allvm.allexe import read_input
from allvm.elf import (
    AR_MAGIC,
    DT_NEEDED,
    DT_RPATH,
    DT_RUNPATH,
    Elf,
    archive_members,
    is_elf,
)
from allvm.errors import AllvmError
from allvm.ir import is_bitcode

SECTION = ".llvm_bc"
LIBDIRS_SECTION = ".llvm_bc_libdirs"  # the -L directories of a link, one per line
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

    def __init__(self, binary: str, library_dirs: list[str] | tuple[str, ...] = ()):
        self.binary = binary
        self.main_paths = bitcode_paths(binary)
        found = find_shared_libraries(binary, list(library_dirs))
        self.libraries, self.native_libraries, self.left_out = found
        self.native_only = [p for p in self.all_paths() if not _is_bitcode_file(p)]

    def all_paths(self) -> list[str]:
        return self.main_paths + [p for _, paths in self.libraries for p in paths]

    @property
    def ir_share(self) -> float:
        """The fraction of translation units that are IR (the rest was assembled natively)."""
        total = len(self.all_paths())
        return (total - len(self.native_only)) / total if total else 0.0

    def main_module(self):
        """The binary's own bitcode, linked into one module (the allexe's `main.bc`); on the
        gnu target, with the native libraries it needs as dependent libraries."""
        module = link_bitcode(self.main_paths, self.binary)
        if self.native_libraries:
            from allvm.toolchain import is_gnu

            if is_gnu(module.triple):
                add_dependent_libraries(module, [path for _, path in self.native_libraries])
            else:  # a static musl program cannot link a shared library
                self.left_out += [(name, f"no bitcode, and a {module.triple} program cannot "
                                   "use a shared library") for name, _ in self.native_libraries]
                self.native_libraries = []
        return module

    def warnings(self) -> list[str]:
        """One line per library or translation unit whose code is not in the allexe."""
        return ([f"shared library '{name}' left out ({why}): its code is not in the allexe"
                 for name, why in self.left_out]
                + [f"no bitcode for '{path}' (assembled natively): its code is not in the IR"
                   for path in self.native_only])

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


def recorded_library_dirs(elf: Elf) -> list[str]:
    """The `-L` directories the compiler wrapper recorded when it linked the binary."""
    contents = elf.section(LIBDIRS_SECTION)
    return _section_paths(contents) if contents is not None else []


def _search_dirs(elf: Elf, binary: str, library_dirs: list[str]) -> list[str]:
    """Where the library the binary was linked against is, most likely first (see above)."""
    origin = os.path.dirname(os.path.abspath(binary))
    dirs = []
    for tag, value in elf.dynamic_entries():
        if tag in (DT_RPATH, DT_RUNPATH):
            dirs += [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
                     for d in value.split(":") if d]
    dirs += library_dirs
    dirs += [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += recorded_library_dirs(elf)
    dirs.append(origin)
    for root, subdirs, _ in os.walk(origin):
        depth = root[len(origin):].count(os.sep)
        if depth >= BUILD_TREE_DEPTH:
            subdirs.clear()
        dirs += sorted(os.path.join(root, d) for d in subdirs)
    return dirs + list(SYSTEM_LIBRARY_DIRS)


def find_library(soname: str, dirs: list[str]) -> str | None:
    """The path of `soname` in the first directory that has it (links not resolved)."""
    for d in dirs:
        candidate = os.path.join(d, soname)
        if os.path.isfile(candidate):
            return candidate
    return None


def _is_system_path(path: str) -> bool:
    return os.path.dirname(path) in SYSTEM_LIBRARY_DIRS


def find_shared_libraries(binary: str, library_dirs: list[str] | None = None):
    """What the shared libraries the binary needs, directly or through libraries with
    bitcode, amount to: ([(library path, its bitcode paths)], [(soname, path)] of native
    system libraries, [(soname, why)] left out). The platform's libraries (libc, libm...)
    are none of these."""
    found, native, left_out, seen, queue = [], [], [], set(), [binary]
    while queue:
        current = queue.pop(0)
        elf = Elf(read_input(current), current)
        needed = [v for tag, v in elf.dynamic_entries() if tag == DT_NEEDED]
        dirs = _search_dirs(elf, current, library_dirs or []) if needed else []
        for soname in needed:
            if soname.startswith(PLATFORM_LIBRARIES):
                continue
            library = find_library(soname, dirs)
            real = os.path.realpath(library) if library else None
            if real in seen:
                continue
            if library is None:
                left_out.append((soname, "not found"))
                continue
            seen.add(real)
            try:
                found.append((real, bitcode_paths(real)))
            except MissingSection:
                if _is_system_path(library):
                    native.append((soname, library))
                else:
                    left_out.append((soname, f"{library} has no bitcode"))
                continue
            queue.append(real)
    return found, native, left_out


def add_dependent_libraries(module, paths: list[str]) -> None:
    """Name native libraries in the module's `!llvm.dependent-libraries` (by linking in a
    module that holds only that metadata: the linker appends named metadata)."""
    from allvm.ir import parse_module

    nodes = ", ".join(f"!{i}" for i in range(len(paths)))
    strings = "".join(f'!{i} = !{{!"{path}"}}\n' for i, path in enumerate(paths))
    text = (f'target triple = "{module.triple}"\n'
            f"!llvm.dependent-libraries = !{{{nodes}}}\n{strings}")
    module.link_in(parse_module(text.encode(), "dependent libraries"))


def dependent_libraries(module) -> list[str]:
    """The module's dependent libraries, as recorded."""
    import re

    text = str(module)
    match = re.search(r"^!llvm\.dependent-libraries = !\{(.*)\}$", text, re.M)
    if not match:
        return []
    ids = re.findall(r"!(\d+)", match[1])
    values = dict(re.findall(r'^!(\d+) = !\{!"([^"]*)"\}$', text, re.M))
    return [values[i] for i in ids if i in values]
