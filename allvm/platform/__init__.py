"""The platform: what a program's native link gets besides the program's own modules.

ALLVM's reference platform is static musl (`*-linux-musl` programs and those with no triple);
a `*-linux-gnu` program links dynamically against the host glibc. On top of the libc:

- the libc fixes (allvm.platform.libc), musl programs only: musl's behaviour where zig's libc
  differs from it;
- the allocator (allvm.platform.malloc) and string functions (allvm.platform.strings), musl
  programs only: mimalloc behind malloc and free, SSE2 strlen, memchr, strcmp..., in place
  of zig's;
- the C++ runtime (allvm.platform.cxx), for the programs whose code needs one, and only for
  those: libc++, libc++abi and libunwind (static), or for gnu programs compiled against
  Debian's libstdc++, its libstdc++.so.6 and libgcc_s.so.1 (dynamic); never both.

A program that carries its libc in IR (`alltogether -platform-ir`, allvm.platform.libc_ir) is
linked with the native runtime only.

What one compiled module needs is recorded with its object (Needs.tag), so linking cached
objects needs no look at the IR.
"""

import os

from allvm.errors import AllvmError
from allvm.platform import cxx, libc, malloc, strings
from allvm.toolchain import GNU_TARGET, MUSL_TARGET, is_gnu, zig_link

# The words a cached object's tag adds to its triple (`c++`: libc++, as before libstdc++ was
# one of the runtimes).
_TAG_WORDS = {cxx.LIBCXX: "c++", cxx.LIBSTDCXX: "libstdc++"}
_RUNTIMES = {word: runtime for runtime, word in _TAG_WORDS.items()}
_LIBC_IR = "libc-ir"


class Needs:
    """What code needs from the platform: the target triple's libc (or, when the code carries
    its libc in IR, only the native runtime), and maybe a C++ runtime (`cxx`: cxx.LIBCXX,
    cxx.LIBSTDCXX, or "" for none).

    (A plain class: alley's warm start imports this module, dataclasses would cost it ms.)"""

    __slots__ = ("triple", "cxx", "libc_ir")

    def __init__(self, triple: str, cxx: str = "", libc_ir: bool = False):
        self.triple = triple
        self.cxx = cxx
        self.libc_ir = libc_ir

    def __eq__(self, other) -> bool:
        return isinstance(other, Needs) and self._fields() == other._fields()

    def _fields(self) -> tuple:
        return self.triple, self.cxx, self.libc_ir

    def __repr__(self) -> str:
        return f"Needs({self.triple!r}, cxx={self.cxx!r}, libc_ir={self.libc_ir})"

    def tag(self) -> bytes:
        """The form stored with a cached object: the triple, then the C++ runtime's word
        (` c++` or ` libstdc++`) and ` libc-ir` if needed."""
        words = [self.triple, *([_TAG_WORDS[self.cxx]] if self.cxx else []),
                 *([_LIBC_IR] if self.libc_ir else [])]
        return " ".join(words).encode()

    @classmethod
    def from_tag(cls, tag: bytes) -> "Needs":
        triple, *words = tag.decode().split(" ")
        runtime = next((_RUNTIMES[word] for word in words if word in _RUNTIMES), "")
        return cls(triple, runtime, _LIBC_IR in words)

    @classmethod
    def of_module(cls, triple: str, declared, libc_ir: bool = False,
                  dependent_libraries=()) -> "Needs":
        """A module's needs, from its triple, the external names it declares, whether it
        carries its libc in IR, and the libraries it names as dependent libraries."""
        return cls(triple, cxx.runtime_of(declared, dependent_libraries), libc_ir)


def program_needs(modules: list[Needs]) -> Needs:
    """A whole program's needs: its main module's (the first) triple, a C++ runtime if any
    module needs one (libstdc++ if any module needs it: one runtime per program), only the
    native runtime if it carries its libc in IR."""
    runtimes = {m.cxx for m in modules}
    runtime = next((r for r in (cxx.LIBSTDCXX, cxx.LIBCXX) if r in runtimes), "")
    return Needs(modules[0].triple, runtime, any(m.libc_ir for m in modules))


def _host_glibc() -> str:
    """The host glibc version, so gnu programs link against the libc they will run with."""
    return (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.36").split()[-1]


def link_flags(needs: Needs) -> list[str]:
    """`zig cc`'s flags for an executable: static musl with the libc fixes, dynamic against
    the host glibc, or static with no libc at all (the program carries its own in IR)."""
    from allvm.native.settings import OPTIMIZED

    triple = needs.triple
    if needs.libc_ir:
        flags = ["-target", MUSL_TARGET, "-static", "-nostdlib"]
    elif is_gnu(triple):
        flags = ["-target", f"{GNU_TARGET}.{_host_glibc()}", "-lm"]
    else:
        flags = ["-target", MUSL_TARGET, "-static", *libc.link_flags()]
    # -O: zig links its libc builds in the mode given (without it, a Debug musl: 10x larger
    # and slower); the same mode `make` warms.
    return [*flags, f"-O{OPTIMIZED.opt_level}", "-s"]


def link_inputs(objects: list[str], needs: Needs) -> list[str]:
    """A program's objects with what the platform links around them: the native runtime
    (start files before, archives after) for a program with its libc in IR, the libc fixes
    after a musl program's, and the platform's allocator and string functions; Debian's C++
    runtime after a gnu program's that needs libstdc++."""
    if needs.libc_ir:
        from allvm.platform.libc_ir import native_runtime

        start, archives = native_runtime()
        return [start, *objects, *archives]
    if is_gnu(needs.triple):
        return [*objects, *(cxx.libstdcxx_libraries() if needs.cxx == cxx.LIBSTDCXX else [])]
    return [*objects, libc.fix_object(), malloc.allocator_object(), strings.string_object()]


def link_executable(objects: list[str], needs: Needs, output: str) -> None:
    """Link a program's objects with the platform it needs into an executable. A symbol
    neither the program nor the platform defines is the loader's classic error."""
    try:
        zig_link(link_flags(needs), link_inputs(objects, needs), output,
                 driver=cxx.DRIVER if needs.cxx == cxx.LIBCXX else "cc")
    except AllvmError as e:
        import re

        undefined = re.findall(r"undefined symbol: (.+?)\s*$", str(e), re.MULTILINE)
        if undefined:
            raise unresolved_error(undefined) from None
        raise


def unresolved_error(names: list[str]) -> AllvmError:
    """`Program used external function '<name>' which could not be resolved! (and N more)`:
    the first name whole (lld's demangled `operator new(unsigned long)` too), N counting the
    other distinct names."""
    distinct = list(dict.fromkeys(names))
    more = f" (and {len(distinct) - 1} more)" if len(distinct) > 1 else ""
    return AllvmError(f"Program used external function '{distinct[0]}' which could not be "
                      f"resolved!{more}")


_WARM_PROGRAMS = {
    "cc": ("warm.c", "int main(void) { return 0; }\n"),
    cxx.DRIVER: ("warm.cpp", "#include <iostream>\n"
                             "int main() { try { throw 1; } catch (int) {} std::cout << 1; }\n"),
}


def warm() -> None:
    """Build once what the first links need (a few minutes): zig's musl and glibc pieces and
    the C++ runtime for both, in the mode the links use; the libc fixes; the link records
    (each link goes through link_executable, as the tools' own do)."""
    import tempfile

    from allvm.toolchain import run_zig

    with tempfile.TemporaryDirectory(prefix="allvm-warm-") as tmp:
        for triple in (MUSL_TARGET, GNU_TARGET):
            for driver in ("cc", cxx.DRIVER):
                name, text = _WARM_PROGRAMS[driver]
                src, obj = os.path.join(tmp, name), os.path.join(tmp, f"{triple}-{name}.o")
                with open(src, "w") as f:
                    f.write(text)
                run_zig(driver, ["-target", triple, "-O2", "-c", src, "-o", obj],
                        "warming the platform", cwd="/")
                link_executable([obj], Needs(triple, cxx.LIBCXX if driver == cxx.DRIVER else ""),
                                os.path.join(tmp, "warm"))
