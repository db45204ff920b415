"""What a program can reach outside itself: the external symbols left after linking its modules.

Because all of a program is IR, this is known before anything runs. A symbol one module
declares and another defines (with external linkage) is resolved inside the program; what
remains must come from the platform (libc), and each is reported with the modules that
reference it.
"""

from itertools import chain

from allvm.allexe import MAIN_MODULE, Allexe
from allvm.ir import check_main, llvm, parse_module

_LOCAL_LINKAGES = {"internal", "private"}


def module_symbols(module) -> tuple[set[str], set[str]]:
    """(definitions other modules can link to, declarations) of one module."""
    defined, declared = set(), set()
    for value in chain(module.functions, module.global_variables):
        if value.name.startswith("llvm."):  # intrinsics and LLVM's special globals
            continue
        if value.is_declaration:
            declared.add(value.name)
        elif value.linkage.name not in _LOCAL_LINKAGES:
            defined.add(value.name)
    return defined, declared


def program_imports(allexe: Allexe, only: set[str] | None = None, *,
                    reached: bool = False) -> dict[str, list[str]]:
    """{external symbol: names of the modules that reference it}, sorted by symbol; over the
    modules named in `only` when given (one program of a muxed allexe).

    A program that carries its libc in IR (alltogether -platform-ir) imports only from the
    native runtime; with `reached`, the libc functions it can reach inside itself are listed
    too, as referenced by `main.bc (libc in IR)`: what a deny policy must see.
    """
    from allvm.platform.libc_ir import reached_functions

    defined, referenced_by, inside = set(), {}, {}
    for entry in allexe.modules:
        if only is not None and entry.name not in only:
            continue
        module = parse_module(allexe.read_module(entry), entry.name,
                              context=llvm().create_context())
        if entry.name == MAIN_MODULE:
            check_main(module, entry.name)
            if reached:
                inside = {name: [f"{entry.name} (libc in IR)"]
                          for name in reached_functions(module)}
        own, declared = module_symbols(module)
        defined |= own
        for name in declared:
            referenced_by.setdefault(name, []).append(entry.name)
    imports = {name: modules for name, modules in referenced_by.items() if name not in defined}
    return dict(sorted((inside | imports).items()))
