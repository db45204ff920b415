"""wllvm-dump: list the bitcode files recorded in a binary's `.llvm_bc` section."""

from allvm.cli import Tool
from allvm.packaging.wllvm import bitcode_paths

tool = Tool(
    "wllvm-dump",
    "List the bitcode files a binary (executable, shared library, object or archive) built\n"
    "with allcc or wllvm records in its .llvm_bc section, one per line.",
    "example:\n  wllvm-dump ./bzip2",
)
tool.positional("binary", metavar="BINARY", help="the binary to read")


def run(args) -> int:
    for path in bitcode_paths(args.binary):
        print(path)
    return 0


def main() -> int:
    return tool.run(run)
