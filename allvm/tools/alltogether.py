"""alltogether: link all modules of an allexe into one and optimize it as a whole program."""

import os

from allvm.cli import Tool

tool = Tool(
    "alltogether",
    "Link every module of IN into one main.bc, internalize everything but 'main', and\n"
    "optimize the result as a whole program (inlining and dead-code removal across the\n"
    "program/library line). Hidden definitions are made internal in their own module first.",
    "example:\n  alltogether prog.allexe          # writes prog.merged.allexe\n"
    "  alltogether prog.allexe -o fast.allexe -f -q\n"
    "  alltogether -platform-ir prog.allexe -o whole.allexe   # libc optimized with it",
)
tool.positional("input", metavar="IN", help="the allexe to merge")
tool.option("o", dest="output", metavar="OUT",
            help="output allexe (default: IN with its extension replaced by 'merged.allexe')")
tool.option("f", dest="force", action="store_true", help="overwrite an existing output")
tool.option("disable-opt", dest="disable_opt", action="store_true",
            help="only link and internalize; run no optimization")
tool.option("q", "quiet", dest="quiet", action="store_true",
            help="print nothing on success")
tool.option("no-internalize-hidden", dest="no_internalize_hidden", action="store_true",
            help="keep hidden definitions visible across modules while linking")
tool.option("platform-ir", dest="platform_ir", action="store_true",
            help="link the parts of libc the program uses as IR and optimize them with it; "
                 "the result is linked with the native runtime only")


def default_output(input_path: str) -> str:
    """`foo.allexe` → `foo.merged.allexe` (as LLVM's replace_extension does)."""
    return os.path.splitext(input_path)[0] + ".merged.allexe"


def run(args) -> int:
    from allvm.allexe import MAIN_MODULE, Allexe, write_allexe
    from allvm.link import merge_allexe, optimize_whole_program
    from allvm.output import check_output_path

    def info(message: str) -> None:
        if not args.quiet:
            print(message, flush=True)

    output = args.output or default_output(args.input)
    check_output_path(output, args.force)  # before any work is done
    info("Combining referenced modules in allexe")
    info(f"  Input: {args.input}\n  Output: {output}")
    allexe = Allexe.open(args.input)
    info("Extracting and merging modules...")
    merged = merge_allexe(allexe, hidden_internal=not args.no_internalize_hidden,
                          progress=info)
    _refuse_platform_ir(merged, args.input)
    if args.platform_ir:
        merged = _with_libc(merged, optimize=not args.disable_opt, info=info)
    else:
        if not args.disable_opt:
            info("Running optimizations...")
        merged = optimize_whole_program(merged, optimize=not args.disable_opt)
    info("Creating merged module...")
    write_allexe(output, [(MAIN_MODULE, merged.as_bitcode())], force=args.force)
    info(f"Successfully wrote to '{output}'")
    return 0


def _refuse_platform_ir(merged, path: str) -> None:
    """A program that already carries its libc in IR is whole: merging it again would
    internalize what the native runtime calls (or link libc in twice)."""
    from allvm.errors import AllvmError
    from allvm.platform.libc_ir import is_platform_ir

    if is_platform_ir(merged):
        raise AllvmError(f"'{path}' already carries its libc in IR (alltogether -platform-ir "
                         "made it): nothing left to merge")


def _with_libc(merged, *, optimize: bool, info):
    """The program with the libc members it uses, linked as IR and optimized with it."""
    from allvm.libc_link import link_with_libc
    from allvm.platform import libc_ir

    platform = libc_ir.load(progress=info)
    info("Linking libc as IR" + (" and running optimizations..." if optimize else "..."))
    return link_with_libc(merged, platform, optimize=optimize, progress=info)


def main() -> int:
    return tool.run(run)
