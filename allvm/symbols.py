"""A module's symbols: which definitions other modules see, and making them internal.

Linking (alltogether), pass pipelines (allopt's `internalize`) and allmux all decide what stays
visible with these; this module imports none of them.
"""

from collections.abc import Iterator
from itertools import chain

# Linkage kinds that make a definition visible to other modules.
# (available_externally is not among them: such a copy is dropped, never made local.)
# (llvmlite spells LLVM's weak and linkonce linkages `weak_any` and `linkonce_any`.)
EXPORTED_LINKAGES = {"external", "weak_any", "weak_odr", "linkonce_any", "linkonce_odr",
                     "common"}

ENTRY_POINT = "main"


def definitions(module) -> Iterator:
    """Functions and global variables the module defines, without LLVM's special globals."""
    for value in chain(module.functions, module.global_variables):
        if not value.is_declaration and not value.name.startswith("llvm."):
            yield value


def exported(value) -> bool:
    """Whether other modules see the definition `value`."""
    return value.linkage.name in EXPORTED_LINKAGES


def _make_internal(value) -> None:
    value.linkage = "internal"
    value.visibility = "default"  # the verifier wants local symbols default-visible


def internalize(module, keep: set[str]) -> None:
    """Give every definition except those named in `keep` internal linkage.

    Intrinsics and LLVM's special globals (`llvm.global_ctors` …) are left alone.
    """
    for value in definitions(module):
        if value.name not in keep and exported(value):
            _make_internal(value)


def internalize_hidden(module) -> None:
    """Hidden definitions are private to the module (the shared library) that has them: make
    them internal before linking, so two libraries' hidden helpers of one name do not clash.
    A hidden `main` stays the entry point."""
    for value in definitions(module):
        if value.visibility.name == "hidden" and value.name != ENTRY_POINT and exported(value):
            _make_internal(value)
