"""allmux: merge several allexes into one multicall allexe that dispatches on argv[0]."""

from allvm.allexe import write_allexe
from allvm.cli import Tool
from allvm.errors import AllvmError
from allvm.output import check_output_path

tool = Tool(
    "allmux",
    "Multiplex several allexes into one (\"software multiplexing\"): the output runs the\n"
    "program named by basename(argv[0]) -- run it through symlinks named like the inputs,\n"
    "or as `OUT PROGRAM ARGS...` -- and holds each shared library module once.",
    "example:\n  allmux wc.allexe cksum.allexe -o tools.allexe\n"
    "  ln -s tools.allexe wc && ./wc README.md",
)
tool.positional("allexes", metavar="ALLEXE", nargs="+", help="the programs to multiplex")
tool.option("o", dest="output", metavar="OUT", help="output allexe (required)")
tool.option("f", dest="force", action="store_true", help="overwrite an existing output")
tool.option("no-internalize", dest="no_internalize", action="store_true",
            help="keep the programs' own symbols visible (default: internalize all but main)")


def run(args) -> int:
    from allvm.mux import check_program_names, mux_allexes

    if not args.output:
        raise AllvmError("no output file given: use -o OUT")
    check_program_names(args.allexes)
    check_output_path(args.output, args.force)
    modules = mux_allexes(args.allexes, internalize_mains=not args.no_internalize)
    write_allexe(args.output, modules, force=args.force)
    return 0


def main() -> int:
    return tool.run(run)
