"""allcc / allc++: drop-in CC and CXX that also keep each translation unit's bitcode.

No option parsing of their own: every argument belongs to the compiler (see
allvm.build.wrapper). ALLVM_CC_TARGET chooses the target (default x86_64-linux-musl).
"""

import sys

from allvm.errors import AllvmError


def _run(name: str, cxx: bool) -> int:
    from allvm.build.wrapper import main

    try:
        return main(sys.argv[1:], cxx)
    except AllvmError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main() -> int:
    return _run("allcc", cxx=False)


def main_cxx() -> int:
    return _run("allc++", cxx=True)
