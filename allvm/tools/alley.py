"""alley: run an allexe: its cached static binary when there is one, else through the JIT path.

Start-up time matters here: the cache-hit path runs before any option parsing or heavy import.
"""

import sys

from allvm.execute import run_cached
from allvm.policy import policy_in_environment
from allvm.signals import set_caller_ignored


def main() -> int:
    argv = sys.argv[1:]
    launched = len(argv) > 1 and argv[0] == "-ignored-signals" and _is_hex(argv[1])
    if launched:
        set_caller_ignored(int(argv[1], 16))  # from the native launcher: not an option of ours
        del sys.argv[1:3]
        argv = argv[2:]
    argv0 = None
    if len(argv) > 2 and argv[0] in ("-argv0", "--argv0"):
        argv0, argv = argv[1], argv[2:]
    # A deny policy needs the program's IR read first: not the cache-hit path.
    if argv and not argv[0].startswith("-") and not policy_in_environment():
        # execs on a cache hit; returns otherwise
        run_cached(argv[0], [argv[0] if argv0 is None else argv0, *argv[1:]])
    return _slow_main(launched)


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdef" for c in text)


def _slow_main(launched: bool) -> int:
    import argparse

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
    tool.option("deny", action="append", default=[], metavar="NAME,...",
                help="refuse to run a program that references one of these functions or "
                     "groups (exec, net, dl); also from -policy FILE and $ALLVM_POLICY")
    tool.option("policy", metavar="FILE", help="a deny policy file: names and groups")
    tool.positional("allexe", metavar="ALLEXE")
    tool.positional("args", metavar="ARGS", nargs=argparse.REMAINDER,
                    help="arguments for the program")
    return tool.run(lambda a: run(a.allexe, [a.allexe if a.argv0 is None else a.argv0, *a.args],
                                  force_static=a.force_static,
                                  noexec=a.noexec, jit=a.jit,
                                  policy=load_policy(a.deny, a.policy)))


if __name__ == "__main__":  # how the native launcher starts the Python alley
    sys.argv[0] = "alley"  # (the module's path otherwise: messages name the tool)
    sys.exit(main())
