"""allmux's keeping programs apart: each reference binds to the definition it had in its program.

Each program was linked alone: its references bound to definitions among its own modules (or
libc's). A mux links the modules of all programs into one executable, where two programs'
libraries that define one external symbol (`init`) with different code would clash, and one
program would reach the other's. So a symbol that more than one *instance* in the mux defines is
renamed `<name>.allmux.<instance>` in each instance that defines it, and every reference to it is
renamed after the definition it binds to in its own program. A reference that a program's own
modules do not define keeps its name: no instance defines that name any more, libc does.

An instance is one copy of a module in the mux. A program's main module is its own instance. A
library module with the same bytes in several programs is one instance — unless its references
to renamed symbols bind to different definitions in different programs (a shared library calling
`init`, which each program defines its own way): it is then one instance per binding, found by
partition refinement (as allvm.sharing finds identical definitions).

Binding follows the static linker: a strong definition wins over weak ones, and among equals the
first module in link order (the program's main module, then its libraries in order). A hidden
definition is its module's own: it binds that module's references only, as a shared library's
hidden symbols do. A symbol whose every definition is `linkonce_odr`/`weak_odr` (C++ inline
functions and templates) is the same everywhere by the one-definition rule: the linker keeps one.
"""

from collections.abc import Hashable
from dataclasses import dataclass
from itertools import chain

from allvm.symbols import exported

STRONG, WEAK, ODR, HIDDEN = "strong", "weak", "odr", "hidden"


@dataclass
class ModuleSymbols:
    """The names a module defines for other modules (with how strongly), and those it uses."""

    defined: dict[str, str]
    referenced: set[str]

    @property
    def mentioned(self) -> set[str]:
        return self.defined.keys() | self.referenced


@dataclass(frozen=True)
class Placement:
    """Where one program's module goes in the mux: its instance (programs whose modules have
    the same instance share that copy), and the symbols renamed in it."""

    instance: str
    renames: dict[str, str]


def module_symbols(module) -> ModuleSymbols:
    defined, referenced = {}, set()
    for value in chain(module.functions, module.global_variables):
        if value.name.startswith("llvm."):
            continue
        if value.is_declaration:
            referenced.add(value.name)
        elif exported(value):
            defined[value.name] = _strength(value)
    return ModuleSymbols(defined, referenced)


def _strength(value) -> str:
    linkage = value.linkage.name
    if linkage.endswith("_odr"):
        return ODR
    if value.visibility.name == "hidden":
        return HIDDEN
    return STRONG if linkage == "external" else WEAK


def place_modules(programs: list[list[tuple[Hashable, str, ModuleSymbols]]]
                  ) -> list[list[Placement]]:
    """For each program's modules — (identity, tag, symbols) in link order, its main module
    first; equal identities for the same bytes — their placements. An instance is named by its
    module's tag, with `.<n>` added when one module needs several instances."""
    occurrences = [(p, identity, symbols) for p, modules in enumerate(programs)
                   for identity, _, symbols in modules]
    tags = [tag for modules in programs for _, tag, _ in modules]
    winners = _winners(occurrences, len(programs))

    def target(o: int, name: str) -> int | None:
        program, _, symbols = occurrences[o]
        return o if symbols.defined.get(name) == HIDDEN else winners[program].get(name)

    renamed: set[str] = set()
    while True:  # renaming a symbol may split instances, whose definitions may then clash
        instances = _refine([identity for _, identity, _ in occurrences],
                            [[(name, target(o, name)) for name in sorted(renamed & s.mentioned)]
                             for o, (_, _, s) in enumerate(occurrences)])
        clashing = _clashing(occurrences, instances)
        if clashing == renamed:
            break
        renamed = clashing
    names = _instance_names(instances, tags)
    placements: list[list[Placement]] = [[] for _ in programs]
    for o, (program, _, symbols) in enumerate(occurrences):
        renames = {name: f"{name}.allmux.{names[instances[t]]}"
                   for name in renamed & symbols.mentioned
                   if (t := target(o, name)) is not None}
        placements[program].append(Placement(names[instances[o]], renames))
    return placements


def _winners(occurrences, programs: int) -> list[dict[str, int]]:
    """For each program, the occurrence whose definition each symbol binds to."""
    winners: list[dict[str, int]] = [{} for _ in range(programs)]
    for o, (program, _, symbols) in enumerate(occurrences):
        for name, strength in symbols.defined.items():
            if strength == HIDDEN:
                continue
            current = winners[program].get(name)
            if current is None or (strength == STRONG
                                   and occurrences[current][2].defined[name] != STRONG):
                winners[program][name] = o
    return winners


def _refine(identities: list[Hashable], bindings: list[list[tuple[str, int | None]]]
            ) -> list[int]:
    """Each occurrence's instance: occurrences of one module stay one instance while their
    bindings reach the same instances, recursively."""
    classes = _numbered(identities)
    while True:
        refined = _numbered([(classes[o], tuple((name, None if t is None else classes[t])
                                                for name, t in bound))
                             for o, bound in enumerate(bindings)])
        if len(set(refined)) == len(set(classes)):  # no class split: stable
            return refined
        classes = refined


def _numbered(keys: list[Hashable]) -> list[int]:
    """Each key as a small number, equal keys equal numbers, in order of first appearance."""
    numbers: dict[Hashable, int] = {}
    return [numbers.setdefault(key, len(numbers)) for key in keys]


def _clashing(occurrences, instances: list[int]) -> set[str]:
    """Symbols defined in more than one instance, other than by the one-definition rule."""
    definers: dict[str, set[int]] = {}
    not_odr = set()
    for o, (_, _, symbols) in enumerate(occurrences):
        for name, strength in symbols.defined.items():
            definers.setdefault(name, set()).add(instances[o])
            if strength != ODR:
                not_odr.add(name)
    return {name for name in not_odr if len(definers[name]) > 1}


def _instance_names(instances: list[int], tags: list[str]) -> dict[int, str]:
    """Each instance's name: its module's tag, numbered when the module has several."""
    per_tag: dict[str, list[int]] = {}
    for instance, tag in zip(instances, tags, strict=True):
        if instance not in per_tag.setdefault(tag, []):
            per_tag[tag].append(instance)
    return {instance: tag if len(found) == 1 else f"{tag}.{n}"
            for tag, found in per_tag.items() for n, instance in enumerate(found)}


def rename_symbols(module, renames: dict[str, str]) -> None:
    """Rename each global (function or variable) of the module named in `renames`; LLVM
    renames every use with it."""
    for value in chain(module.functions, module.global_variables):
        if value.name in renames:
            value.name = renames[value.name]
