"""Deny policies: refuse to run a program that can reach a denied platform function.

A policy is a set of function names, written directly or through named groups (`exec`, `net`,
`dl`). It comes from `alley -deny=NAME,...`, from a policy file (`-policy FILE`) and from the
file named by `$ALLVM_POLICY`; all that are given apply. A policy file holds names and groups
separated by white space or commas; `#` starts a comment.

The check reads the program's IR (allvm.imports) before any of its code runs, on every path.
A program that carries its libc in IR (alltogether -platform-ir) defines `system` itself: for
it the check covers the libc functions it can reach, as recorded when it was built.
`syscall` is in the exec and net groups because it reaches both without naming either.

A muxed allexe (allmux) is checked for the one program that argv[0] (or, busybox-style, the
first argument) selects: its modules, from the manifest the mux's dispatcher carries, and the
dispatcher itself. After alltogether a mux is one module, checked as a whole.
"""

import os

from allvm.allexe import Allexe
from allvm.errors import AllvmError

GROUPS = {
    "exec": ["system", "popen", "wordexp", "execve", "execv", "execvp", "execvpe", "execl",
             "execlp", "execle", "fexecve", "fork", "vfork", "_Fork", "clone", "posix_spawn",
             "posix_spawnp", "syscall"],
    "net": ["socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto",
            "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "recvmmsg", "getaddrinfo",
            "gethostbyname", "gethostbyname2", "gethostbyaddr", "syscall"],
    "dl": ["dlopen", "dlmopen", "dlsym", "dlvsym"],
}
POLICY_ENV = "ALLVM_POLICY"


class Policy:
    """The denied functions, each with the word (group or name) that denied it."""

    def __init__(self, words: list[str]):
        self.denied: dict[str, str] = {}
        for word in words:
            for name in GROUPS.get(word, [word]):
                self.denied.setdefault(name, word)

    def __bool__(self) -> bool:
        return bool(self.denied)

    def check(self, allexe: Allexe, argv: list[str]) -> None:
        """Refuse the program if it references a denied function; name it and the module.

        For a muxed allexe, the program is the one the dispatcher will select for `argv` (the
        program's, as alley passes it): its own modules and the dispatcher.
        """
        from allvm.allexe import MAIN_MODULE
        from allvm.imports import program_imports
        from allvm.mux import read_manifest, selected_program

        only = None
        programs = read_manifest(allexe)
        if programs is not None:
            selected = selected_program(programs, argv[0], argv[1:])
            only = {MAIN_MODULE, *programs.get(selected, [])}
        for name, modules in program_imports(allexe, only, reached=True).items():
            if name in self.denied:
                word = self.denied[name]
                why = f" (denied group '{word}')" if word != name else ""
                raise AllvmError(f"policy: '{allexe.path}' references denied function "
                                 f"'{name}'{why} in module '{modules[0]}'")


def split_words(text: str) -> list[str]:
    """Names and groups separated by white space or commas."""
    return text.replace(",", " ").split()


def read_policy_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not a text file"
        raise AllvmError(f"Could not read policy file '{path}': {reason}") from None
    return [word for line in lines for word in split_words(line.split("#", 1)[0])]


def load_policy(deny: list[str], policy_file: str | None) -> Policy | None:
    """The policy from -deny values, -policy FILE and $ALLVM_POLICY; None if there is none."""
    words = [word for value in deny for word in split_words(value)]
    for path in (policy_file, os.environ.get(POLICY_ENV)):
        if path:
            words += read_policy_file(path)
    return Policy(words) or None


def policy_in_environment() -> bool:
    """Whether $ALLVM_POLICY asks for a check (alley's cache-hit path must not skip it)."""
    return bool(os.environ.get(POLICY_ENV))
