"""The option/--version/error helper every tool shares, so all tools feel alike.

Options are LLVM-style single-dash long words (`-noexec`); the double-dash spelling is accepted
too. A user error is one line `<tool>: message` on stderr and exit 1, never a traceback.
"""

import argparse
import os
import sys
from collections.abc import Callable

from allvm import LLVM_VERSION, __version__
from allvm.errors import AllvmError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class _ToolParser(argparse.ArgumentParser):
    def error(self, message: str):
        if "the following arguments are required" in message:
            message = "Not enough positional command line arguments specified"
        raise AllvmError(f"{message} (see '{self.prog} --help')")


class _VersionAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        raise SystemExit(0)


def option_names(name: str) -> list[str]:
    """`-name` and `--name` for a word, just `-x` for a letter."""
    return [f"-{name}"] if len(name) == 1 else [f"-{name}", f"--{name}"]


class Tool:
    """One command: its parser, and the wrapper that turns errors into one line."""

    def __init__(self, name: str, description: str, epilog: str = "", *,
                 intermixed: bool = False):
        """intermixed: options may come between positionals even when the last positional
        takes any number of words (`build -o OUT PKG...` and `sample` with none)."""
        self.name = name
        self.intermixed = intermixed
        self.parser = _ToolParser(
            prog=name,
            description=description,
            epilog=epilog,
            add_help=False,
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self.option("help", action="help", help="show this help and exit")
        self.option("version", action=_VersionAction, nargs=0,
                    help="show the ALLVM Tools and LLVM versions and exit")

    def option(self, *names: str, **kwargs) -> None:
        """Add an option; each name gets its single- and double-dash spellings."""
        self.parser.add_argument(*[s for n in names for s in option_names(n)], **kwargs)

    def positional(self, name: str, **kwargs) -> None:
        self.parser.add_argument(name, **kwargs)

    def error(self, message: str) -> None:
        print(f"{self.name}: {message}", file=sys.stderr)

    def warning(self, message: str) -> None:
        print(f"{self.name}: warning: {message}", file=sys.stderr)

    def run(self, handler: Callable[[argparse.Namespace], int | None],
            argv: list[str] | None = None) -> int:
        """Parse, call the handler, and map every failure to a message and an exit code."""
        try:
            args = (self.parser.parse_intermixed_args(argv) if self.intermixed
                    else self.parser.parse_args(argv))
            status = handler(args) or 0
            sys.stdout.flush()
            return status
        except AllvmError as e:
            self.error(str(e))
            return EXIT_ERROR
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            return stdout_closed()
        except MemoryError:  # e.g. under a small `ulimit -v`
            self.error("out of memory")
            return EXIT_ERROR
        except SystemExit as e:  # --help / --version
            return e.code if isinstance(e.code, int) else 0
        except Exception as e:  # a bug in allvm-py: still one line, the traceback on request
            if os.environ.get("ALLVM_DEBUG"):
                raise
            self.error(f"internal error: {type(e).__name__}: {e} (set ALLVM_DEBUG=1 for details)")
            return EXIT_ERROR


def stdout_closed() -> int:
    """The reader went away (`all-info x | head -1`): not an error worth a message. Point
    stdout at /dev/null so Python's final flush does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_ERROR


def version_text() -> str:
    return f"ALLVM Tools (allvm-py) version {__version__}\n  LLVM version {LLVM_VERSION}"
