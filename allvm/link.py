"""Linking an allexe's modules into one and optimizing it as a whole program (alltogether)."""

from collections.abc import Callable

from allvm.errors import AllvmError
from allvm.passes import run_pipeline
from allvm.symbols import ENTRY_POINT, definitions, internalize, internalize_hidden

# The whole-program pipeline alltogether runs after internalizing. O3 over O2, measured on the
# examples (bench/bench_alltogether.py): O2 and O3 give the same code for wc and stats; on nbody
# O3 takes 15% less CPU time than O2 (median user time of 11 alternating runs) for 4 KB more
# code. The trailing globaldce drops what inlining across modules left unused.
WHOLE_PROGRAM_PIPELINE = "default<O3>,globaldce"


def check_conflicts(modules: list[tuple[str, object]]) -> None:
    """Refuse two strong (non-weak, non-common) definitions of one symbol in two modules.

    llvmlite's own linker error names neither module, so this runs before linking.
    """
    owner: dict[str, str] = {}
    for name, module in modules:
        for value in definitions(module):
            if value.linkage.name != "external":
                continue
            first = owner.setdefault(value.name, name)
            if first != name:
                raise AllvmError(f"symbol '{value.name}' is defined in both '{first}' "
                                 f"and '{name}'")


def merge_allexe(allexe, *, hidden_internal: bool = True,
                 progress: Callable[[str], None] = lambda message: None):
    """All modules of an allexe linked into one (the main module), nothing internalized yet.
    The main module must define `main` (as bc2allvm requires), every module be for this
    machine."""
    from allvm.codegen import check_target
    from allvm.ir import check_main, parse_module

    modules = []
    for entry in allexe.modules:
        progress(f"  {entry.name}")
        # One LLVM context for all: link_in needs it. Modules are parsed in this thread only.
        module = parse_module(allexe.read_module(entry), entry.name)
        check_target(module)
        if not modules:
            check_main(module, entry.name)
        if hidden_internal:
            internalize_hidden(module)
        modules.append((entry.name, module))
    check_conflicts(modules)
    merged = modules[0][1]
    for name, module in modules[1:]:
        try:
            merged.link_in(module)
        except RuntimeError as e:
            raise AllvmError(f"linking '{name}' failed: {' '.join(str(e).split())}") from None
    return merged


def optimize_whole_program(module, *, optimize: bool = True):
    """Internalize everything but `main`, then (unless told not to) run the whole-program
    pipeline: with every caller known, LLVM inlines and deletes across the old module lines.
    Returns the module (see internalize)."""
    module = internalize(module, keep={ENTRY_POINT})
    if optimize:
        run_pipeline(module, WHOLE_PROGRAM_PIPELINE)
    module.verify()
    return module
