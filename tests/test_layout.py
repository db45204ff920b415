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
