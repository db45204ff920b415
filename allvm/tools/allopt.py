"""allopt: run a pipeline (an external command, or built-in passes) over an allexe's IR."""

import argparse
import sys

from allvm.cli import Tool
from allvm.errors import AllvmError

tool = Tool(
    "allopt",
    "Run PIPELINE over the IR of each module of an allexe. PIPELINE is a command found on\n"
    "PATH, run with the module's bitcode on stdin and an empty environment; its stdout must\n"
    "be bitcode, which replaces the module (with -analyze: its stdout is the output, as is).\n"
    "Everything after PIPELINE is passed to it. IN and OUT default to stdin and stdout, so\n"
    "allopt chains through pipes. Multi-module allexes get the pipeline applied to each\n"
    "module (with -analyze, the outputs follow one another in module order).\n"
    "Built-in, no external tool needed: -passes=PIPELINE runs an LLVM pass pipeline string\n"
    "(default<O0>..default<O3> and single passes, comma-separated); -dis prints textual IR.",
    "examples:\n  allopt -i a.allexe cat | allopt -passes='default<O2>' | allopt -o b.allexe cat\n"
    "  allopt -analyze -i a.allexe llvm-dis -o a.ll    # '-o a.ll' is llvm-dis's\n"
    "  allopt -i a.allexe -passes=sroa,instcombine -dis",
)
tool.option("i", dest="input", metavar="IN", default="-", help="input allexe (default: stdin)")
tool.option("o", dest="output", metavar="OUT", default="-", help="output (default: stdout)")
tool.option("f", dest="force", action="store_true",
            help="overwrite an existing OUT; write an allexe to a terminal")
tool.option("analyze", action="store_true",
            help="the pipeline prints something other than IR: write its output as is")
tool.option("passes", metavar="PIPELINE",
            help="built-in: run this pass pipeline string, e.g. 'default<O2>' or 'sroa,dce'")
tool.option("dis", action="store_true", help="built-in: print textual IR (after -passes)")
tool.positional("pipeline", metavar="PIPELINE", nargs="?",
                help="external command, found on PATH")
tool.positional("pipeline_args", metavar="ARGS", nargs=argparse.REMAINDER,
                help="arguments for PIPELINE")


def check_mode(args) -> None:
    if args.pipeline and (args.passes or args.dis):
        raise AllvmError("give either an external PIPELINE or -passes/-dis, not both")
    if not (args.pipeline or args.passes or args.dis):
        raise AllvmError("no pipeline: give PIPELINE, -passes=PIPELINE or -dis")
    if args.analyze and args.passes and not args.dis:
        raise AllvmError("-passes produces IR, not an analysis: add -dis to print it")


def writes_text(args) -> bool:
    return args.analyze or args.dis


def check_output(args) -> None:
    """Refuse a bad OUT before any work is done."""
    from allvm.output import check_output_path

    if args.output != "-":
        check_output_path(args.output, args.force)
    elif not writes_text(args) and sys.stdout.isatty() and not args.force:
        raise AllvmError("Refusing to write an allexe to a terminal (use -o, a pipe, or -f)")


def read_input(path: str):
    from allvm.allexe import Allexe

    if path == "-":
        return Allexe.from_bytes("<stdin>", sys.stdin.buffer.read())
    return Allexe.open(path)


def transform(args, bitcode: bytes, module_name: str) -> bytes:
    """One module through the pipeline: new bitcode, or (analyze/-dis) text output."""
    from allvm.bitcode import is_bitcode
    from allvm.ir import parse_module

    if args.pipeline:
        from allvm.passes import run_external_pipeline

        result = run_external_pipeline(args.pipeline, args.pipeline_args, bitcode, module_name)
        if args.analyze:
            return result
        if not is_bitcode(result):
            raise AllvmError(f"pipeline '{args.pipeline}' did not produce bitcode "
                             f"for '{module_name}'")
        # A truncated or broken result would only fail later, in alley: refuse it now.
        parse_module(result, f"output of pipeline '{args.pipeline}' for '{module_name}'")
        return result
    module = parse_module(bitcode, module_name)
    if args.passes:
        from allvm.passes import run_pipeline

        run_pipeline(module, args.passes)
        module.verify()
    return str(module).encode() if args.dis else module.as_bitcode()


def write_result(args, data: bytes, *, executable: bool) -> None:
    from allvm.output import write_output

    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        write_output(args.output, data, force=args.force, executable=executable)


def run(args) -> int:
    from allvm.allexe import pack_allexe

    check_mode(args)
    check_output(args)
    allexe = read_input(args.input)
    results = [(entry.name, transform(args, allexe.read_module(entry), entry.name))
               for entry in allexe.modules]
    if writes_text(args):
        write_result(args, b"".join(data for _, data in results), executable=False)
    else:  # an allexe, like every allexe written: shebang line, run bit
        write_result(args, pack_allexe(results), executable=True)
    return 0


def main() -> int:
    return tool.run(run)
