"""all-info: list the modules of an allexe and their CRCs (and, on request, its imports);
also of the allexe a static binary carries (allvm.native.carry)."""

from allvm.allexe import Allexe
from allvm.cli import Tool

tool = Tool(
    "all-info",
    "List the modules of an allexe, each with its CRC-32 (its displayed identity).\n"
    "-imports adds the platform functions the program can reach: the external symbols left\n"
    "after linking all its modules, each with the modules that reference it, those of the\n"
    "C++ runtime (libc++, libc++abi, libunwind) marked [C++ runtime].\n"
    "Given a static binary built by allready (an ELF file), it lists the modules of the allexe\n"
    "the binary carries in its .allvm.allexe section (bc2allvm -from-binary recovers it).",
    "example:\n  all-info hello.allexe\n  Modules:\n  \tmain.bc (9561D0E4)\n"
    "  all-info -imports -json hello.allexe\n"
    "  all-info ~/.cache/allvm/static_binaries/9561D0E4-...   # a static binary",
)
tool.positional("allexe", metavar="ALLEXE|BINARY")
tool.option("imports", action="store_true",
            help="list the external symbols the program references, and from which modules")
tool.option("json", action="store_true", help="print one JSON object (for scripts)")


def print_text(allexe: Allexe, imports: dict[str, list[str]] | None) -> None:
    from allvm.platform.cxx import is_runtime_symbol

    print("Modules:")
    for entry in allexe.modules:
        print(f"\t{entry.name} ({entry.crc_hex})")
    if imports is not None:
        print("Imports:")
        for name, modules in imports.items():
            provider = " [C++ runtime]" if is_runtime_symbol(name) else ""
            print(f"\t{name} ({', '.join(modules)}){provider}")


def print_json(allexe: Allexe, imports: dict[str, list[str]] | None) -> None:
    import json

    info = {"modules": [{"name": e.name, "crc": e.crc_hex, "size": e.size,
                         "compressed_size": e.compressed_size} for e in allexe.modules]}
    if imports is not None:
        from allvm.platform.cxx import is_runtime_symbol

        info["imports"] = [{"name": name, "modules": modules,
                            "provider": "C++ runtime" if is_runtime_symbol(name) else "libc"}
                           for name, modules in imports.items()]
    print(json.dumps(info, indent=2))


def run(args) -> int:
    from allvm.native.carry import open_allexe_or_binary

    allexe = open_allexe_or_binary(args.allexe)
    imports = None
    if args.imports:
        from allvm.imports import program_imports

        imports = program_imports(allexe)
    (print_json if args.json else print_text)(allexe, imports)
    return 0


def main() -> int:
    return tool.run(run)
