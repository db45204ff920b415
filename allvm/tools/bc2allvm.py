"""bc2allvm: package bitcode / textual IR modules into an executable allexe; or recover the
allexe a static binary carries (`-from-binary`, allvm.native.carry)."""

import os

from allvm.allexe import MAIN_MODULE, write_allexe
from allvm.cli import Tool
from allvm.errors import AllvmError
from allvm.output import check_output_path

tool = Tool(
    "bc2allvm",
    "Package LLVM modules (bitcode or textual IR) into an allexe. MAIN must define 'main';\n"
    "each LIB becomes a library module. Known inline-asm idioms are replaced by IR.\n"
    "-from-binary BINARY writes, byte for byte, the allexe that a static binary built by\n"
    "allready carries (its .allvm.allexe section): a binary copied to another machine can\n"
    "be rebuilt there.",
    "example:\n  bc2allvm hello.bc            # writes hello.allexe\n"
    "  bc2allvm prog.bc libfoo.ll -o prog.allexe -f\n"
    "  bc2allvm -from-binary ./prog -o prog.allexe",
)
tool.positional("main", metavar="MAIN", nargs="?", help="the program's module (defines main)")
tool.positional("libs", metavar="LIB", nargs="*", help="library modules")
tool.option("o", dest="output", metavar="OUT", help="output allexe (default: MAIN.allexe)")
tool.option("f", dest="force", action="store_true", help="overwrite an existing output")
tool.option("preserve-asm", dest="preserve_asm", action="store_true",
            help="keep inline assembly as it is (default: replace known idioms by IR)")
tool.option("from-binary", dest="binary", metavar="BINARY",
            help="recover the allexe this static binary carries (default OUT: BINARY.allexe)")


def default_output(main_path: str) -> str:
    return os.path.splitext(main_path)[0] + ".allexe"


def module_name(path: str) -> str:
    """A library module's entry name: its file name, as bitcode."""
    return os.path.splitext(os.path.basename(path))[0] + ".bc"


def load_input(path: str, preserve_asm: bool):
    from allvm.deasm import deasm_module
    from allvm.ir import read_module_file

    module = read_module_file(path)
    if not preserve_asm:
        module, kept = deasm_module(module)
        for where in kept:
            tool.warning(f"{path}: inline asm kept in "
                         + ("module asm" if where == "module asm" else f"function '{where}'"))
    return module


def recover(args) -> int:
    """-from-binary: the carried allexe's exact bytes into OUT."""
    from allvm.native.carry import read_carried
    from allvm.output import write_output

    if args.main or args.libs:
        raise AllvmError("-from-binary takes no MAIN or LIB modules")
    output = args.output or f"{args.binary}.allexe"
    check_output_path(output, args.force)
    write_output(output, read_carried(args.binary), force=args.force, executable=True)
    return 0


def run(args) -> int:
    if args.binary:
        return recover(args)
    if not args.main:
        raise AllvmError("Not enough positional command line arguments specified "
                         f"(see '{tool.name} --help')")
    output = args.output or default_output(args.main)
    check_output_path(output, args.force)
    from allvm.ir import check_main

    main = load_input(args.main, args.preserve_asm)
    check_main(main, args.main)
    modules = [(MAIN_MODULE, main.as_bitcode())]
    for lib in args.libs:
        modules.append((module_name(lib), load_input(lib, args.preserve_asm).as_bitcode()))
    write_allexe(output, modules, force=args.force)
    return 0


def main() -> int:
    return tool.run(run)
