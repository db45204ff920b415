"""A module's symbols: which definitions other modules see, and making them internal.

Linking (alltogether), pass pipelines (allopt's `internalize`) and allmux all decide what stays
visible with these; this module imports none of them.
"""

import re
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


# Linkages of definitions that clang puts in a comdat (C++ inline functions, templates, static
# locals and their guards): code with such definitions is C++ (or like it) and may have aliases.
_COMDAT_LINKAGES = {"linkonce_any", "linkonce_odr", "weak_any", "weak_odr"}
# A local definition's line, and its comdat membership (`comdat` or `comdat($name)`).
_LOCAL_DEFINITION = re.compile(r"^(?:define (?:internal|private) |@\S+ = (?:internal|private) )"
                               r".*$", re.MULTILINE)
_COMDAT_MEMBERSHIP = re.compile(r',? comdat(?:\(\$(?:"(?:[^"\\]|\\.)*"|[^\s)]+)\))?(?=[ ,{]|$)')
# An alias's line (C++ constructors and destructors: `@_ZN1AD1Ev = alias …, ptr @_ZN1AD2Ev`),
# split into its name, its linkage and visibility words, and the words that stay.
_ALIAS = re.compile(r'^@("(?:[^"\\]|\\.)*"|[^\s"]+) = ((?:[a-z_]+(?:\([a-z]+\))? )*?)alias ',
                    re.MULTILINE)
_ALIAS_KEPT_WORDS = re.compile(r"\b(?:unnamed_addr|local_unnamed_addr|thread_local(?:\(\w+\))?)")


def internalize(module, keep: set[str], *, keep_replacements: bool = True):
    """Give every definition except those named in `keep` internal linkage; returns the
    module, parsed anew when C++ code needed more than llvmlite can do (_internalize_in_text).

    Intrinsics and LLVM's special globals (`llvm.global_ctors` …) are left alone; so are,
    with `keep_replacements`, the program's replacements of functions the platform's C++
    runtime calls too (operator new/delete).
    """
    from allvm.platform.cxx import is_replaceable

    in_comdats = False
    for value in definitions(module):
        if (value.name not in keep and exported(value)
                and not (keep_replacements and is_replaceable(value.name))):
            in_comdats |= value.linkage.name in _COMDAT_LINKAGES
            _make_internal(value)
    return _internalize_in_text(module, keep) if in_comdats else module


def _internalize_in_text(module, keep: set[str]):
    """What llvmlite cannot do on a module, done on its text (parsed anew if it changed):
    aliases (which C++ compilers make of constructors and destructors) become internal, and
    local definitions leave their comdats (as LLVM's own internalize pass does).

    A comdat becomes an ELF section group named after it; the linker keeps one group per
    name. Once its members are internal, another module's group of that name (another program
    of a mux, or the C++ runtime's instantiation of the same template) would win, and
    references to this module's internal copies would point into a discarded section.
    """
    from allvm.ir import parse_module, unescape

    def internal_alias(match: re.Match) -> str:
        name = match[1]
        if (unescape(name[1:-1]).decode(errors="replace") if name[0] == '"' else name) in keep:
            return match[0]
        words = " ".join(_ALIAS_KEPT_WORDS.findall(match[2]))
        return f"@{name} = internal {words}{' ' if words else ''}alias "

    text = str(module)
    fixed = _LOCAL_DEFINITION.sub(lambda line: _COMDAT_MEMBERSHIP.sub("", line[0]),
                                  _ALIAS.sub(internal_alias, text))
    return module if fixed == text else parse_module(fixed.encode(), module.name)


def internalize_hidden(module) -> None:
    """Hidden definitions are private to the module (the shared library) that has them: make
    them internal before linking, so two libraries' hidden helpers of one name do not clash.
    A hidden `main` stays the entry point."""
    for value in definitions(module):
        if value.visibility.name == "hidden" and value.name != ENTRY_POINT and exported(value):
            _make_internal(value)
