"""all-info: list the modules of an allexe and their CRCs."""

from allvm.allexe import Allexe
from allvm.cli import Tool

tool = Tool(
    "all-info",
    "List the modules of an allexe, each with its CRC-32 (its displayed identity).",
    "example:\n  all-info hello.allexe\n  Modules:\n  \tmain.bc (9561D0E4)",
)
tool.positional("allexe", metavar="ALLEXE")


def run(args) -> int:
    allexe = Allexe.open(args.allexe)
    print("Modules:")
    for entry in allexe.modules:
        print(f"\t{entry.name} ({entry.crc_hex})")
    return 0


def main() -> int:
    return tool.run(run)
