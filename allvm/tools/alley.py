"""alley: run an allexe: its cached static binary when there is one, else through the JIT path.

Start-up time matters here: the cache-hit path runs before any option parsing or heavy import.
"""

import os
import sys

from allvm.execute import run_cached
from allvm.native.settings import TIERS
from allvm.policy import policy_in_environment
from allvm.signals import set_caller_ignored

# alley's options that take a value: everything up to ALLEXE is alley's, the rest the program's.
_VALUED = {"argv0", "jit", "deny", "policy", "tier"}
# The options a cache hit still answers here (the launcher answers the first two itself).
_HIT_OPTIONS = {"force-static", "argv0", "tier"}


def main() -> int:
    argv = sys.argv[1:]
    launched = len(argv) > 1 and argv[0] == "-ignored-signals" and _is_hex(argv[1])
    if launched:
        set_caller_ignored(int(argv[1], 16))  # from the native launcher: not an option of ours
        argv = argv[2:]
    elif argv and argv[0].startswith("-") and _started_by_kernel(argv[0]):
        argv = ["--", *argv]  # started through the file's `#!`: its name is not an option
    options, program = split_arguments(argv)
    pairs = dict(_option_pairs(options))  # the last of each wins, as in argparse
    # A deny policy needs the program's IR read first: not the cache-hit path.
    if program and not policy_in_environment() and set(pairs) <= _HIT_OPTIONS:
        argv0 = pairs.get("argv0") or program[0]
        # execs on a cache hit; returns otherwise
        run_cached(program[0], [argv0, *program[1:]], objects="force-static" not in pairs,
                   tier=TIERS.get(pairs.get("tier") or ""))
    return _slow_main(launched, options, program)


def split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """(alley's options, [ALLEXE, the program's arguments...]): the first word that is not an
    option or an option's value, or the one after `--`, is ALLEXE; nothing after it is alley's."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return argv[:i], argv[i + 1:]
        if not word.startswith("-") or word == "-":
            return argv[:i], argv[i:]
        i += 2 if word.lstrip("-") in _VALUED else 1
    return argv, []


def _option_pairs(options: list[str]) -> list[tuple[str, str | None]]:
    """(name, value) of each option, as `-name VALUE`, `-name=VALUE` or a flag."""
    pairs, i = [], 0
    while i < len(options):
        name, _, value = options[i].lstrip("-").partition("=")
        if name in _VALUED and not value:
            value = options[i + 1] if i + 1 < len(options) else None
            i += 1
        pairs.append((name, value or None))
        i += 1
    return pairs


def _started_by_kernel(first: str) -> bool:
    """Whether alley runs as the `#!` interpreter of the file `first`: the kernel was asked to
    run `first` itself (its AT_EXECFN), not alley."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_void_p
    name = libc.getauxval(31)  # AT_EXECFN
    return bool(name) and ctypes.string_at(name) == os.fsencode(first)


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def _slow_main(launched: bool, options: list[str], program: list[str]) -> int:

    if not launched:  # the script pip installs: the native launcher is built on its first use
        from allvm.launcher import ensure_installed

        ensure_installed()

    from allvm.cli import Tool
    from allvm.execute import run
    from allvm.policy import load_policy

    tool = Tool(
        "alley",
        "Run an allexe. A static binary cached by allready (or -force-static) is executed\n"
        "directly; otherwise every module is compiled to a cached object, linked and run.\n"
        "Everything after ALLEXE is passed to the program.",
        "examples:\n  alley hello.allexe --name world\n  ./hello.allexe           "
        "# allexes carry a '#!alley' line\n  alley -force-static hello.allexe\n"
        "  cp .venv/bin/alley bin/hello   # a stub: runs bin/hello.allexe as `hello ARGS`",
    )
    tool.option("argv0", metavar="NAME",
                help="the program's argv[0] (default: ALLEXE as given), as `exec -a` sets it: "
                     "for a launcher that runs an allexe under the name it was called by")
    tool.option("noexec", action="store_true",
                help="do all the work (load, compile, resolve symbols) but run nothing")
    tool.option("force-static", dest="force_static", action="store_true",
                help="build the cached static binary if missing, then run it")
    tool.option("jit", choices=("exec", "inprocess"), default="exec",
                help="how the JIT path runs a *-linux-gnu program: linked and exec'd (the "
                     "default, and always for musl) or inside alley's process")
    tool.option("tier", choices=("fast", "optimized"), default=None,
                help="how the JIT path compiles a program not cached yet: fast (the default, "
                     "also from $ALLVM_TIER: the program starts at once and its optimized "
                     "static binary is built in the background for its next start) or "
                     "optimized (optimized objects, nothing built in the background)")
    tool.option("deny", action="append", default=[], metavar="NAME,...",
                help="refuse to run a program that references one of these functions or "
                     "groups (exec, net, dl); also from -policy FILE and $ALLVM_POLICY")
    tool.option("policy", metavar="FILE", help="a deny policy file: names and groups")
    tool.positional("allexe", metavar="ALLEXE")
    tool.positional("args", metavar="ARGS", nargs="*",
                    help="arguments for the program (everything after ALLEXE is the program's)")
    return tool.run(lambda a: run(a.allexe, [a.allexe if a.argv0 is None else a.argv0,
                                             *program[1:]],
                                  force_static=a.force_static,
                                  noexec=a.noexec, jit=a.jit,
                                  policy=load_policy(a.deny, a.policy),
                                  tier=TIERS[a.tier] if a.tier else None),
                    [*options, "--", *program[:1]])


if __name__ == "__main__":  # how the native launcher starts the Python alley
    sys.argv[0] = "alley"  # (the module's path otherwise: messages name the tool)
    sys.exit(main())
