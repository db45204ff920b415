"""The library's shape: imports between allvm's modules run one way."""

import ast
from pathlib import Path

import allvm

PACKAGE = Path(allvm.__file__).parent


def module_imports() -> dict[str, set[str]]:
    """{module: the allvm modules it imports}, imports inside functions included."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {_imported_module(node.module, alias.name) for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name.removesuffix(".__init__")] = {m for m in imported if m.startswith("allvm")}
    return graph


def _imported_module(module: str, name: str) -> str:
    """`from module import name`: the submodule `module.name` where there is one."""
    path = PACKAGE.parent.joinpath(*module.split("."), name)
    return f"{module}.{name}" if path.with_suffix(".py").exists() or path.is_dir() else module


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for imported in graph.get(todo.pop(), ()):
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def test_no_import_cycles():
    graph = module_imports()
    assert "allvm.link" in graph and "allvm.passes" in graph["allvm.link"]
    cycles = sorted(f"{a} -> {b}" for a, imported in graph.items() for b in imported
                    if a in reachable(graph, b))
    assert cycles == []


# Arrows that would run back up the layers (docs/ARCHITECTURE.md): (importer, imported), each a
# module or a package prefix.
FORBIDDEN = [
    ("allvm.platform", "allvm.packaging"),  # the platform reads ELF with allvm.elf, low down
    ("allvm.platform", "allvm.libc_link"),  # libc in IR is linked beside alltogether's link
    ("allvm.platform", "allvm.link"),
    ("allvm.native.settings", "allvm"),  # a leaf: on alley's cache-hit path
    ("allvm.cache", "allvm.native.build"),
    ("allvm.elf", "allvm"),  # a low-level reader, for the platform and packaging alike
]
# What a leaf may still import: the package's versions, and its one error type.
BOTTOM = {"allvm", "allvm.errors"}
LIBRARY_ONLY = "allvm.tools"  # nothing in the library imports a tool


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_no_import_runs_back_up():
    graph = module_imports()
    assert "allvm.elf" in graph and "allvm.libc_link" in graph
    upward = sorted(f"{a} -> {b}" for a, imported in graph.items() for b in imported
                    for low, high in FORBIDDEN
                    if _within(a, low) and _within(b, high) and b not in BOTTOM)
    upward += sorted(f"{a} -> {b}" for a, imported in graph.items() for b in imported
                     if _within(b, LIBRARY_ONLY) and not _within(a, LIBRARY_ONLY))
    assert upward == []
