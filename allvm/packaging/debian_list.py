"""A package list for `allvm-debian build -list FILE`: source packages, each with only what a
generic build cannot know about it, every override with its reason.

The file is TOML, one table per source package (an empty table is a package the generic build
handles alone):

    [NAME]
    notes = "..."                  said in the report
    [NAME.tree]                    executables of the build tree Debian does not ship (a
    programs = ["xmltest"]         library's test program), made allexes and tested like
    why = "..."                    the .debs' programs: why they are needed
    make = "make check TESTS="     (optional) the shell line that makes them, in the build
                                   tree after Debian's build, if that build does not
    [NAME.test]                    the tests, instead of what Debian's build runs (dh_auto_test)
    why = "..."                    (required) why Debian's own tests will not do
    command = "make check ..."     a shell line in the build tree; "" runs none of Debian's
    tests_file = "x.txt"           (with command) ` TESTS='...'`: the names in that file
                                   (beside the list; `#` starts a comment line)
    [[NAME.test.cases]]            command lines (bash, pipefail) in a scratch directory with
                                   the mode's programs first on PATH: `name`, `run`, and what
                                   must hold besides exit status 0: `stdout_file` (stdout
                                   equals the file), `stdout` (the text), `stdout_contains`.
                                   Variables: {tree} (the build tree), {list} (the list's
                                   directory), {work} (the scratch directory)
    [NAME.reasons]                 why a known test fails: test name = "reason"
"""

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from allvm.errors import AllvmError

CASE_FIELDS = {"name", "run", "stdout", "stdout_file", "stdout_contains"}


@dataclass
class Entry:
    """What the list knows of one source package."""

    name: str
    directory: Path  # the list's: {list} in a case, where tests_file is
    notes: str = ""
    tree: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def test_command(self) -> str | None:
        """The shell line that runs the tests instead of Debian's (None: Debian's)."""
        if "command" not in self.test:
            return None
        command = self.test["command"]
        if "tests_file" in self.test:
            listed = (self.directory / self.test["tests_file"]).read_text().splitlines()
            names = " ".join(t for t in listed if t.strip() and not t.startswith("#"))
            command += f" TESTS={shlex.quote(names)}"
        return command

    @property
    def tree_programs(self) -> list[str]:
        return self.tree.get("programs", [])

    @property
    def cases(self) -> list[dict]:
        return self.test.get("cases", [])


def _checked(name: str, raw: dict, path: Path) -> Entry:
    where = f"{path.name}: [{name}]"
    try:
        entry = Entry(name=name, directory=path.parent, **raw)
    except TypeError as e:  # a field the format lacks
        unknown = str(e).rsplit(" ", 1)[-1]
        raise AllvmError(f"{where}: unknown field {unknown}") from None
    _fields(f"{where}.tree", entry.tree, {"programs", "why", "make"}, "why they are needed")
    _fields(f"{where}.test", entry.test, {"why", "command", "tests_file", "cases"},
            "the reason Debian's own tests will not do")
    test = entry.test
    if "tests_file" in test and "command" not in test:
        raise AllvmError(f"{where}.test: tests_file without command")
    if "tests_file" in test and not (entry.directory / test["tests_file"]).is_file():
        raise AllvmError(f"{where}.test: no file {test['tests_file']} beside the list")
    for case in entry.cases:
        if not {"name", "run"} <= set(case) or set(case) - CASE_FIELDS:
            raise AllvmError(f"{where}.test.cases: a case has `name` and `run`, and may have "
                             f"{', '.join(sorted(CASE_FIELDS - {'name', 'run'}))} "
                             f"(got {', '.join(sorted(case))})")
    return entry


def _fields(where: str, table: dict, known: set[str], why: str) -> None:
    """A table of overrides: only the fields the format has, and `why` (its reason)."""
    unknown = sorted(set(table) - known)
    if unknown:
        raise AllvmError(f"{where}: unknown field {', '.join(unknown)}")
    if table and not table.get("why"):
        raise AllvmError(f"{where}: no `why` ({why})")


def load_list(path: Path) -> dict[str, Entry]:
    """Every entry of the list, in its order; a malformed one is refused naming itself. Its
    directory is absolute: a case runs in a scratch directory, not where the list was named."""
    path = Path(path).absolute()
    try:
        tables = tomllib.loads(path.read_text())
    except OSError as e:
        raise AllvmError(f"{path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise AllvmError(f"{path}: not a package list ({e})") from None
    entries = {}
    for name, raw in tables.items():
        if not isinstance(raw, dict):
            raise AllvmError(f"{path.name}: `{name}` is not a package table")
        entries[name] = _checked(name, raw, path)
    return entries
