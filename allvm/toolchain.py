"""Where the bundled clang/lld (the `ziglang` package) is and how it is called.

zig finds its global cache through HOME/XDG and fails without them, so every zig subprocess gets
one fixed cache directory inside this install (found without HOME, warmed by `make`), in the
subprocess's environment only: the user program's environment is never touched.
"""

import json
import os
import subprocess
import sys

from allvm.errors import AllvmError

MUSL_TARGET = "x86_64-linux-musl"
GNU_TARGET = "x86_64-linux-gnu"


def zig_cache_dir() -> str:
    return os.environ.get("ALLVM_ZIG_CACHE_DIR") or os.path.join(sys.prefix, "var", "zig-cache")


def zig_env() -> dict[str, str]:
    env = dict(os.environ)
    cache = zig_cache_dir()
    env["ZIG_GLOBAL_CACHE_DIR"] = cache
    env["ZIG_LOCAL_CACHE_DIR"] = cache
    return env


def zig_binary() -> str:
    """The zig executable the `ziglang` package carries (its `python -m ziglang` entry point
    only execs it, at the price of a second Python start-up)."""
    import ziglang

    return os.path.join(os.path.dirname(ziglang.__file__), "zig")


def zig_command(subcommand: str, *args: str) -> list[str]:
    """The command line for `zig <subcommand> args...`."""
    return [zig_binary(), subcommand, *args]


def run_zig(subcommand: str, args: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run zig; a failure becomes an AllvmError naming `what` with zig's own message."""
    proc = subprocess.run(zig_command(subcommand, *args), env=zig_env(), capture_output=True,
                          text=True, **kwargs)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise AllvmError(f"{what} failed: {detail}")
    return proc


def is_gnu(triple: str) -> bool:
    """`x86_64-unknown-linux-gnu`, also with versions (`…-linux6.1-gnu2.36`)."""
    return triple.rsplit("-", 1)[-1].startswith("gnu")


# The placeholders of a recorded lld command line.
_OBJECTS, _OUTPUT = "{objects}", "{output}"


def zig_link(flags: list[str], objects: list[str], output: str, *, driver: str = "cc") -> None:
    """Link like `zig cc FLAGS OBJECTS -o OUTPUT` (or `zig c++`, whose link adds the C++
    runtime), calling zig's lld directly when possible.

    `zig cc` checks its libc builds on every call before it runs lld: two thirds of a 90 ms
    link of cached objects, paid by every start on the JIT path. The lld command line it
    runs depends on FLAGS only, so it is recorded once (`zig cc -###`) and replayed.
    """
    recipe = _recorded_link(driver, flags)
    if recipe is None:
        _link_and_record(driver, flags, objects, output)
        return
    args = []
    for token in recipe:
        args += objects if token == _OBJECTS else [output] if token == _OUTPUT else [token]
    run_zig("ld.lld", args, "linking")


def link_record_path(flags: list[str], driver: str = "cc") -> str:
    """Where the lld command for FLAGS is recorded: zig's cache directory, keyed by the driver,
    the flags and the zig binary (another zig prints another command)."""
    from _blake2 import blake2b

    zig = os.stat(zig_binary())
    key = json.dumps([driver, flags, zig.st_size, zig.st_mtime_ns]).encode()
    return os.path.join(zig_cache_dir(),
                        f"allvm-link-{blake2b(key, digest_size=10).hexdigest()}.json")


def _recorded_link(driver: str, flags: list[str]) -> list[str] | None:
    """lld's arguments for FLAGS, with placeholders for the objects and the output, if a
    usable record of them exists."""
    try:
        with open(link_record_path(flags, driver)) as f:
            recipe = json.load(f)
    except (OSError, ValueError):
        return None
    return recipe if isinstance(recipe, list) and _files_exist(recipe) else None


def _link_and_record(driver: str, flags: list[str], objects: list[str], output: str) -> None:
    """Link through `zig cc -###` (or `zig c++ -###`), which links and prints the commands it
    runs, and record the final lld command with placeholders for the objects and the output.

    It runs from `/`: zig prints its cache's paths relative to a working directory above the
    cache (and keys its libc builds by that form); from `/` they are absolute.
    """
    objects = [os.path.abspath(o) for o in objects]
    output = os.path.abspath(output)
    printed = run_zig(driver, [*flags, *objects, "-o", output, "-###"], "linking", cwd="/")
    recipe = _printed_link(printed.stderr + printed.stdout, objects, output)
    if recipe is not None and _files_exist(recipe):
        _save_record(link_record_path(flags, driver), recipe)


def _printed_link(printed: str, objects: list[str], output: str) -> list[str] | None:
    """The final lld command of zig's printout, objects and output as placeholders; None if
    it cannot be told apart (a path with a blank, which the printed line cannot carry)."""
    commands = [line.split() for line in printed.splitlines()]
    finals = [c[1:] for c in commands if c and c[0] == "ld.lld" and c.count(output) == 1]
    if len(finals) != 1:
        return None
    tokens = [_OUTPUT if t == output else t for t in finals[0]]
    for start in range(len(tokens) - len(objects) + 1):
        if tokens[start:start + len(objects)] == objects:
            return tokens[:start] + [_OBJECTS] + tokens[start + len(objects):]
    return None


def _files_exist(recipe: list[str]) -> bool:
    """Whether every file the recipe names (crt objects, zig's libc builds) is there, by an
    absolute path: a relative one would depend on the directory alley runs in."""
    paths = [t for t in recipe if "/" in t and not t.startswith("-")]
    return all(os.path.isabs(p) and os.path.exists(p) for p in paths)


def _save_record(path: str, recipe: list[str]) -> None:
    """Write the record atomically; a cache directory that cannot be written is no error."""
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temp, "w") as f:
            json.dump(recipe, f)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
