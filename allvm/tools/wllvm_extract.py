"""wllvm-extract: turn a binary built with allcc (or wllvm) into an allexe."""

import sys

from allvm.cli import Tool
from allvm.output import check_output_path
from allvm.packaging.wllvm import Extraction, MissingSection

tool = Tool(
    "wllvm-extract",
    "Make an allexe from a binary built with allcc or wllvm: the binary's own bitcode (static\n"
    "archives included) linked into main.bc, and one library module per shared library it\n"
    "needs that carries bitcode. Code assembled natively is reported: it is not in the IR.",
    "example:\n  wllvm-extract ./bzip2             # writes bzip2.allexe\n"
    "  wllvm-extract src/lua -o lua.allexe -f",
)
tool.positional("binary", metavar="BINARY", help="the executable to extract")
tool.option("o", dest="output", metavar="OUT", help="output allexe (default: BINARY.allexe)")
tool.option("f", dest="force", action="store_true", help="overwrite an existing output")


def run(args) -> int:
    from allvm.allexe import MAIN_MODULE, write_allexe
    from allvm.ir import check_main

    output = args.output or args.binary + ".allexe"
    check_output_path(output, args.force)
    try:
        extraction = Extraction(args.binary)
    except MissingSection:
        print(f"Error reading file: {args.binary}", file=sys.stderr)
        raise
    for soname in extraction.unfound_libraries:
        tool.warning(f"cannot find the shared library '{soname}': its code is not in the allexe")
    for path in extraction.native_only:
        tool.warning(f"no bitcode for '{path}' (assembled natively): its code is not in the IR")
    main = extraction.main_module()
    check_main(main, args.binary)
    write_allexe(output, [(MAIN_MODULE, main.as_bitcode()), *extraction.library_modules()],
                 force=args.force)
    return 0


def main() -> int:
    return tool.run(run)
