"""allvm-binfmt: register allexes and LLVM bitcode as executable formats of the kernel."""

import os

from allvm import binfmt
from allvm.cli import Tool
from allvm.errors import AllvmError

tool = Tool(
    "allvm-binfmt",
    "Register allexes without a '#!' line and raw LLVM bitcode files with Linux binfmt_misc,\n"
    "so the kernel runs them like 'alley FILE' (through alley's native launcher, argv[0]\n"
    "kept, usable by every user). Registering and unregistering need root; binfmt_misc is\n"
    "mounted if it is not. Register again after upgrading allvm-py: the kernel keeps the\n"
    "launcher it opened at registration.\n\n"
    "To make programs start natively for every user, prepare them at install time into the\n"
    "system cache (root's, read by everyone after their own cache): 'allready -system PROG...'.",
    "examples:\n  allvm-binfmt register\n  allready -system /usr/local/bin/*.allexe\n"
    "  chmod +x prog.bc && ./prog.bc args\n  allvm-binfmt status\n  allvm-binfmt unregister",
)
tool.positional("action", choices=("register", "unregister", "status"),
                help="what to do")
tool.option("name-prefix", dest="prefix", default=binfmt.DEFAULT_PREFIX, metavar="PREFIX",
            help=f"the registrations' names are PREFIX-allexe, PREFIX-bitcode and "
                 f"PREFIX-bitcode-wrapper (default: {binfmt.DEFAULT_PREFIX})")


def _interpreter() -> str:
    """alley's native launcher, under the name it reads binfmt_misc's argv by."""
    from allvm.launcher import BINFMT_NAME, ensure_installed, launcher_path

    if not ensure_installed():
        raise AllvmError("alley's native launcher could not be built (run 'make setup' or "
                         "'python -m allvm.launcher' to see why)")
    return os.path.join(os.path.dirname(launcher_path()), BINFMT_NAME)


def _show_status(prefix: str) -> None:
    for name, fields in binfmt.status(prefix).items():
        if fields is None:
            print(f"{name}: not registered")
        else:
            print(f"{name}: {fields['state']}, interpreter {fields.get('interpreter', '?')}, "
                  f"flags {fields.get('flags', '')}")


def _act(args) -> int:
    if args.action == "register":
        for name in binfmt.register(_interpreter(), args.prefix):
            print(f"registered {name}")
    elif args.action == "unregister":
        removed = binfmt.unregister(args.prefix)
        for name in removed:
            print(f"unregistered {name}")
        if not removed:
            print("nothing was registered")
    else:
        _show_status(args.prefix)
    return 0


def main() -> int:
    return tool.run(_act)
