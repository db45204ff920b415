"""Linking modules together and deciding which symbols stay visible (alltogether, allmux)."""

from itertools import chain

# Linkage kinds that make a definition visible to other modules.
# (available_externally is not among them: such a copy is dropped, never made local.)
_EXPORTED_LINKAGES = {"external", "weak", "weak_odr", "linkonce", "linkonce_odr", "common"}


def internalize(module, keep: set[str]) -> None:
    """Give every definition except those named in `keep` internal linkage.

    Intrinsics and LLVM's special globals (`llvm.global_ctors` …) are left alone.
    """
    for value in chain(module.functions, module.global_variables):
        if value.is_declaration or value.name in keep or value.name.startswith("llvm."):
            continue
        if value.linkage.name in _EXPORTED_LINKAGES:
            value.linkage = "internal"
            value.visibility = "default"  # the verifier wants local symbols default-visible
