"""The platform's C++ runtimes: which one a program's code needs, and what linking it takes.

- **libc++** (LIBCXX): libc++, libc++abi and libunwind, as `zig c++` links them (statically).
  The runtime of musl programs, and of gnu programs compiled against zig's libc++ headers.
- **libstdc++** (LIBSTDCXX): Debian's own, for the gnu target: GCC's libstdc++.so.6 and the
  unwinder it throws through, libgcc_s.so.1, linked dynamically as glibc is. Every Debian C++
  library (Boost, Qt, ICU's C++ API...) is built against it: a `std::string` or an exception
  crosses into such a library only in libstdc++'s ABI (`std::__cxx11::basic_string`, not
  libc++'s `std::__1::basic_string`). allc++ compiles gnu C++ against libstdc++'s headers
  (allvm.packaging.wrapper) and records the library in each such module's
  `!llvm.dependent-libraries` (code generation puts it in the object's `.deplibs` section);
  wllvm-extract records it too, from the program's DT_NEEDED.

Which runtime a module needs is told by the module itself: libstdc++ when its dependent
libraries name libstdc++ (so old allexes and gnu modules compiled against libc++ keep linking
as they did: what a module needs follows from its content, which the cache keys cover);
otherwise libc++ when it references the runtime by name: C++ names (mangled, `_Z…`: the
standard library, `operator new`, type_info objects), the Itanium C++ ABI's `__cxa_…`
functions (but those the libc itself defines), the personality routine, `__dynamic_cast`, and
the unwinder's `_Unwind_…`. A C program's link stays the C link. A program gets one runtime,
never both: libstdc++ if any of its modules needs it (allvm.platform.program_needs).
"""

import os
from collections.abc import Iterable

from allvm.errors import AllvmError

LIBCXX, LIBSTDCXX = "libc++", "libstdc++"
# `zig c++` links what `zig cc` links plus libc++, built for the same target and mode.
DRIVER = "c++"

_PREFIXES = ("_Z", "__cxa_", "__gxx_personality", "__dynamic_cast", "_Unwind_")
# The `__cxa_` functions musl and glibc define (atexit handlers, quick_exit, thread_local dtors).
_LIBC_NAMES = {"__cxa_atexit", "__cxa_finalize", "__cxa_at_quick_exit",
               "__cxa_thread_atexit_impl"}
# Functions a program may define to replace the runtime's (operator new/delete in all their
# forms: `_Znwm`, `_ZnamRKSt9nothrow_t`, `_ZdlPvmSt11align_val_t`, ...). The runtime calls
# them too, so whole-program optimization must keep such definitions visible.
_REPLACEABLE_PREFIXES = ("_Znw", "_Zna", "_Zdl", "_Zda")

# Debian's C++ runtime and where its multiarch layout puts it and its headers.
LIBSTDCXX_SONAME = "libstdc++.so.6"
_GNU_RUNTIME_SONAMES = (LIBSTDCXX_SONAME, "libgcc_s.so.1")
_GNU_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu")
_GNU_CXX_INCLUDE = "/usr/include/c++"
_GNU_CXX_TARGET_INCLUDE = "/usr/include/x86_64-linux-gnu/c++"
_DEPLIBS_SECTION = ".deplibs"


def is_runtime_symbol(name: str) -> bool:
    """Whether the C++ runtime is what provides the external symbol `name`."""
    return name.startswith(_PREFIXES) and name not in _LIBC_NAMES


def uses_runtime(declared: Iterable[str]) -> bool:
    """Whether code declaring these external names needs a C++ runtime linked in."""
    return any(is_runtime_symbol(name) for name in declared)


def is_replaceable(name: str) -> bool:
    """Whether a program's definition of `name` replaces the runtime's (operator new/delete)."""
    return name.startswith(_REPLACEABLE_PREFIXES)


def is_libstdcxx(library: str) -> bool:
    """Whether a dependent library (a path or a name) is libstdc++."""
    return os.path.basename(library).startswith("libstdc++.so")


def runtime_of(declared: Iterable[str], dependent_libraries: Iterable[str] = ()) -> str:
    """The C++ runtime code needs (LIBSTDCXX, LIBCXX), or "" for none (see above)."""
    if any(is_libstdcxx(library) for library in dependent_libraries):
        return LIBSTDCXX
    return LIBCXX if uses_runtime(declared) else ""


def object_dependent_libraries(obj: bytes) -> list[str]:
    """The dependent libraries code generation put in an object's `.deplibs` section."""
    from allvm.elf import Elf

    contents = Elf(obj, "object").section(_DEPLIBS_SECTION) or b""
    return [name.decode("utf-8", "replace") for name in contents.split(b"\0") if name]


def _find(soname: str) -> str:
    for directory in _GNU_LIBRARY_DIRS:
        path = os.path.join(directory, soname)
        if os.path.exists(path):
            return path
    raise AllvmError(f"Debian's C++ runtime is not installed: no {soname} in "
                     f"{' or '.join(_GNU_LIBRARY_DIRS)} (apt-get install libstdc++6)")


def libstdcxx_path() -> str:
    """Where Debian's libstdc++.so.6 is (what allc++ records as the dependent library)."""
    return _find(LIBSTDCXX_SONAME)


def libstdcxx_libraries() -> list[str]:
    """The libraries a link with libstdc++ takes, by path: libstdc++.so.6 and libgcc_s.so.1
    (as g++ links them; the program's own unwinding calls, `_Unwind_Resume`, are libgcc_s's).
    By path, not `-lstdc++`: zig's driver takes that for its own libc++."""
    return [_find(soname) for soname in _GNU_RUNTIME_SONAMES]


def libstdcxx_include_dirs() -> list[str]:
    """libstdc++'s header directories in g++'s order (`/usr/include/c++/12`, its target
    directory, `backward`), of the newest GCC whose headers are installed."""
    try:
        versions = [v for v in os.listdir(_GNU_CXX_INCLUDE) if v.isdigit()
                    and os.path.isdir(os.path.join(_GNU_CXX_TARGET_INCLUDE, v))]
    except OSError:
        versions = []
    if not versions:
        raise AllvmError(f"libstdc++'s headers are not installed: no {_GNU_CXX_INCLUDE}/N with "
                         f"{_GNU_CXX_TARGET_INCLUDE}/N (apt-get install libstdc++-12-dev)")
    version = max(versions, key=int)
    base = os.path.join(_GNU_CXX_INCLUDE, version)
    return [base, os.path.join(_GNU_CXX_TARGET_INCLUDE, version), os.path.join(base, "backward")]
