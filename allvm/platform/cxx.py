"""The platform's C++ runtime: libc++, libc++abi and libunwind, as `zig c++` links them.

A program gets them when its code references them, and only then: a C program's link stays
the C link. Whether a module references the runtime is told by the names it declares: C++
names (mangled, `_Z…`: the standard library, `operator new`, type_info objects), the Itanium
C++ ABI's `__cxa_…` functions (but those the libc itself defines), the personality routine,
`__dynamic_cast`, and libunwind's `_Unwind_…`.
"""

from collections.abc import Iterable

# `zig c++` links what `zig cc` links plus the C++ runtime, built for the same target and mode.
DRIVER = "c++"

_PREFIXES = ("_Z", "__cxa_", "__gxx_personality", "__dynamic_cast", "_Unwind_")
# The `__cxa_` functions musl and glibc define (atexit handlers, quick_exit, thread_local dtors).
_LIBC_NAMES = {"__cxa_atexit", "__cxa_finalize", "__cxa_at_quick_exit",
               "__cxa_thread_atexit_impl"}
# Functions a program may define to replace the runtime's (operator new/delete in all their
# forms: `_Znwm`, `_ZnamRKSt9nothrow_t`, `_ZdlPvmSt11align_val_t`, ...). The runtime calls
# them too, so whole-program optimization must keep such definitions visible.
_REPLACEABLE_PREFIXES = ("_Znw", "_Zna", "_Zdl", "_Zda")


def is_runtime_symbol(name: str) -> bool:
    """Whether the C++ runtime is what provides the external symbol `name`."""
    return name.startswith(_PREFIXES) and name not in _LIBC_NAMES


def uses_runtime(declared: Iterable[str]) -> bool:
    """Whether code declaring these external names needs the C++ runtime linked in."""
    return any(is_runtime_symbol(name) for name in declared)


def is_replaceable(name: str) -> bool:
    """Whether a program's definition of `name` replaces the runtime's (operator new/delete)."""
    return name.startswith(_REPLACEABLE_PREFIXES)
