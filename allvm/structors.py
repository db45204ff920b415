"""Static constructor and destructor tables: `llvm.global_ctors` and `llvm.global_dtors`.

Three places need the functions these tables list, and all read them here: codegen (to emit
them as init arrays), the in-process JIT (which calls them itself) and allmux (which calls only
the selected program's). The llvmlite binding exposes no constant operands, so a table is read
from its printed initializer: exact, and with opaque pointers a constructor reached through a
bitcast prints as a plain `ptr @f`.
"""

import re

from allvm.errors import AllvmError
from allvm.ir import find_function, symbol_name

CTORS, DTORS = "llvm.global_ctors", "llvm.global_dtors"
DEFAULT_PRIORITY = 65535
_ENTRY = re.compile(r"\{ i32 (\d+), ptr (@(?:\"[^\"]*\"|[-\w.$]+)), ptr [^}]+\}")
_LOCAL_LINKAGES = {"internal", "private"}


def find_table(module, table: str):
    """The module's `table` global, or None."""
    return next((g for g in module.global_variables if g.name == table), None)


def table_entries(module, table: str) -> list[tuple[int, str]]:
    """(priority, function name) of each entry of a ctor/dtor table, in table order."""
    variable = find_table(module, table)
    if variable is None:
        return []
    entries = _ENTRY.findall(str(variable))
    if len(entries) != variable.global_value_type.element_count:
        raise AllvmError(f"{module.name}: cannot read {table}")
    return [(int(priority), symbol_name(ref)) for priority, ref in entries]


def export_structors(module, prefix: str) -> dict[str, list[tuple[int, str]]]:
    """Each table's (priority, function name) list, every function made callable from another
    module: a local one gets the unique external name `<prefix>.<n>` (two modules may both
    have a static `init`). A function listed twice, or in both tables, is exported once."""
    exported: dict[str, str] = {}
    tables = {}
    for table in (CTORS, DTORS):
        entries = []
        for priority, name in table_entries(module, table):
            if name not in exported:
                exported[name] = _export(module, name, f"{prefix}.{len(exported)}", table)
            entries.append((priority, exported[name]))
        tables[table] = entries
    return tables


def _export(module, name: str, unique: str, table: str) -> str:
    function = find_function(module, name)
    if function is None:
        raise AllvmError(f"{module.name}: {table} lists unknown '{name}'")
    if not function.is_declaration and function.linkage.name in _LOCAL_LINKAGES:
        function.name = unique
        function.linkage = "external"
        function.visibility = "default"
    return function.name


def disable_tables(module) -> None:
    """Make the tables ordinary unused globals, so they run nothing (llvmlite cannot delete a
    global; a GlobalDCE pass afterwards drops them)."""
    for table in (CTORS, DTORS):
        variable = find_table(module, table)
        if variable is not None:
            variable.name = f"allvm.disabled.{table.removeprefix('llvm.')}"
            variable.linkage = "internal"
