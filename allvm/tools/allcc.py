"""allcc / allc++: drop-in CC and CXX that also keep each translation unit's bitcode.

Every argument belongs to the compiler (see allvm.packaging.wrapper), with two exceptions shared
with every ALLVM tool: `--version` alone prints clang's version followed by the ALLVM Tools
lines, and `--help` alone explains the wrapper. ALLVM_CC_TARGET chooses the target (default
x86_64-linux-musl).
"""

import sys

from allvm.cli import EXIT_INTERRUPTED, stdout_closed
from allvm.errors import AllvmError

_HELP = """usage: {name} [compiler options] FILE...

A drop-in {language} compiler (clang 22, bundled with zig) for building real software into
allexes: it produces the normal objects, libraries and programs, and also each translation
unit's bitcode, listed in the object's .llvm_bc section (the wllvm convention). Use it as
CC/CXX with an unchanged build system, then turn a program into an allexe with wllvm-extract.

Every option is the compiler's. The target is x86_64-linux-musl unless ALLVM_CC_TARGET says
otherwise (e.g. ALLVM_CC_TARGET=x86_64-linux-gnu). Assembly sources are assembled natively;
wllvm-extract reports the code they add as missing from the IR.

example:
  ./configure CC=allcc && make && wllvm-extract src/prog -o prog.allexe
"""


def _own_option(name: str, cxx: bool, argv: list[str]) -> bool:
    """Handle `--version` / `--help` given alone; True if handled."""
    import subprocess

    from allvm.cli import version_text
    from allvm.packaging.wrapper import target
    from allvm.toolchain import zig_command, zig_env

    if argv in (["--version"], ["-version"]):
        subprocess.run(zig_command("c++" if cxx else "cc", "-target", target(), "--version"),
                       env=zig_env())
        print(version_text())
        return True
    if argv in (["--help"], ["-help"]):
        print(_HELP.format(name=name, language="C++" if cxx else "C"), end="")
        return True
    return False


def _run(name: str, cxx: bool) -> int:
    from allvm.packaging.wrapper import main

    try:
        if _own_option(name, cxx, sys.argv[1:]):
            return 0
        return main(sys.argv[1:], cxx)
    except AllvmError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return stdout_closed()


def main() -> int:
    return _run("allcc", cxx=False)


def main_cxx() -> int:
    return _run("allc++", cxx=True)
