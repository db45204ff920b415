"""wllvm-extract: turn a binary built with allcc (or wllvm) into an allexe."""

import sys

from allvm.cli import Tool
from allvm.output import check_output_path
from allvm.packaging.wllvm import Extraction, MissingSection

tool = Tool(
    "wllvm-extract",
    "Make an allexe from a binary built with allcc or wllvm: the binary's own bitcode (static\n"
    "archives included) linked into main.bc, and one library module per shared library it\n"
    "needs that carries bitcode. A needed library is looked for where the binary was linked\n"
    "against it first (rpath, -L, $LD_LIBRARY_PATH, the -L paths of its link, its build\n"
    "tree), the system's directories last. A system library without bitcode (libz.so.1)\n"
    "is recorded in main.bc (gnu target) and linked natively; any code left out of the\n"
    "allexe (a library not found, code assembled natively) is named in a warning.",
    "example:\n  wllvm-extract ./bzip2             # writes bzip2.allexe\n"
    "  wllvm-extract src/lua -o lua.allexe -f\n"
    "  wllvm-extract root/usr/bin/file -L root/usr/lib/x86_64-linux-gnu",
)
tool.positional("binary", metavar="BINARY", help="the executable to extract")
tool.option("o", dest="output", metavar="OUT", help="output allexe (default: BINARY.allexe)")
tool.option("f", dest="force", action="store_true", help="overwrite an existing output")
tool.option("L", dest="library_dirs", metavar="DIR", action="append", default=[],
            help="look for needed shared libraries in DIR before $LD_LIBRARY_PATH, the build "
                 "tree and the system (repeatable)")


def run(args) -> int:
    from allvm.allexe import MAIN_MODULE, write_allexe
    from allvm.ir import check_main

    output = args.output or args.binary + ".allexe"
    check_output_path(output, args.force)
    try:
        extraction = Extraction(args.binary, args.library_dirs)
    except MissingSection:
        print(f"Error reading file: {args.binary}", file=sys.stderr)
        raise
    main = extraction.main_module()
    for line in extraction.warnings():
        tool.warning(line)
    check_main(main, args.binary)
    write_allexe(output, [(MAIN_MODULE, main.as_bitcode()), *extraction.library_modules()],
                 force=args.force)
    return 0


def main() -> int:
    return tool.run(run)
