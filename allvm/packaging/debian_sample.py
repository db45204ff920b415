"""`allvm-debian sample`: N source packages of bookworm main that nobody chose, by a seeded rule.

What it reads: apt's Sources index of bookworm main — the file `apt-get indextargets` names for
`Created-By: Sources`, `Codename: bookworm`, `Component: main` (under /var/lib/apt/lists/,
compressed; read through `/usr/lib/apt/apt-helper cat-file`): what `apt-get update` fetched
after allvm.packaging.debian.ensure_deb_src added deb-src. Only whether a chosen source is
served is asked of the mirror.

A source package is a candidate when every criterion holds (each cheap, from its stanza only):

1. **Not an extra-source-only stanza** (`Extra-Source-Only: yes`): those are kept in the
   archive for another package's sake, not built on their own.
2. **Architecture-dependent code**: `Architecture` names `any`, `linux-any`, `amd64` or
   `any-amd64` — only compiled code becomes IR; an `all`-only package has none.
3. **C or C++, not another language's build**: no build-dependency is another language's
   toolchain or build system (OTHER_LANGUAGE: Python's pybuild, Rust, Go, Haskell, Fortran,
   Java, OCaml, Node, Ruby, R, Perl XS, Pascal, Ada, C#, Erlang, Octave, Emacs Lisp...). C and
   C++ need no build-dependency (build-essential is implied), so there is no positive sign.
   False positives: a package whose compiled code is in an unlisted language (assembly, D,
   Nim, a Vala-to-C build counts as C and is fine), and one with a little C beside a larger
   other-language build that names none of OTHER_LANGUAGE; `allvm-debian build` looks at the
   unpacked source and reports such a package as `no C or C++ code`.
   False negatives: a C program with Python bindings built by dh-python is left out.
4. **Built by debhelper** (`debhelper-compat` or `debhelper` among the build-dependencies):
   `allvm-debian build` runs the tests the way debhelper does (`dh_auto_test` or the
   package's override).
5. **At most MAX_BUILD_DEPENDS (8) build-dependencies** (clauses of `Build-Depends`,
   `-Arch` and `-Indep`, an `a | b` alternative counting once): `apt-get build-dep` installs
   all of them, and a sample is about the wrappers, not about installing half the archive.
6. **At most MAX_SOURCE_BYTES (5 MB) of source**: the sum of the sizes the stanza's `Files`
   lists (.dsc, orig and debian tarballs, compressed): a sample builds in hours, not days.
7. **It ships a program**: `Package-List` has an architecture-dependent binary package that
   is not a library, development, debug, documentation, data or common package (by name:
   `lib*`, `*-dev`, `*-dbg`, `*-doc`, `*-data`, `*-common`; by section: libs, libdevel, debug,
   doc, oldlibs, fonts). The measure is executables into allexes; a library-only package
   has none (its IR would still be recorded). False positives: a binary package with only a
   plugin or a shared object (e.g. LADSPA plugins), which is reported with 0 executables.

Then `random.Random(seed).sample(sorted(candidates), n)`: the same index and seed give the
same packages, in the sample's order.
"""

import random
import re
import subprocess
from collections.abc import Callable

from allvm.errors import AllvmError
from allvm.packaging.debian import source_served, sources_index

ARCHITECTURES = {"any", "linux-any", "amd64", "any-amd64"}
OTHER_LANGUAGE = {
    # Python (pybuild), Rust, Go, Haskell, Fortran, Java, OCaml, Node, Ruby, R, Perl XS,
    # Pascal, Ada, C#, Erlang, PHP, Octave, Emacs Lisp, Lua's rocks
    "dh-python", "dh-sequence-python3", "python3-all-dev", "python3-setuptools",
    "pybuild-plugin-pyproject", "cargo", "rustc", "dh-cargo", "golang-go", "golang-any",
    "dh-golang", "dh-sequence-golang", "ghc", "haskell-devscripts", "gfortran", "default-jdk",
    "default-jdk-headless", "javahelper", "maven-debian-helper", "gradle", "ant", "dh-nodejs",
    "dh-sequence-nodejs", "nodejs", "node-gyp", "ocaml", "ocaml-nox", "ocaml-dune",
    "dh-ocaml", "gem2deb", "ruby", "ruby-dev", "dh-r", "r-base-dev", "perl-xs-dev",
    "libmodule-build-perl", "fpc", "lazarus", "gnat", "dh-ada-library", "mono-devel",
    "cli-common-dev", "dh-dlang", "ldc", "gdc", "erlang-dev", "dh-php", "php-dev", "dh-octave",
    "octave-dev", "dh-elpa", "dh-sequence-elpa", "dh-lua", "nim",
}
MAX_BUILD_DEPENDS = 8
MAX_SOURCE_BYTES = 5_000_000
NOT_A_PROGRAM_SECTIONS = {"libs", "libdevel", "debug", "doc", "oldlibs", "fonts"}
NOT_A_PROGRAM_SUFFIXES = ("-dev", "-dbg", "-doc", "-data", "-common")
HELPER = "/usr/lib/apt/apt-helper"


class SampleError(AllvmError):
    """Bad input or no index; the message is one line."""


def read_index(path: str) -> str:
    proc = subprocess.run([HELPER, "cat-file", path], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SampleError(f"cannot read {path}: {proc.stderr.strip()}")
    return proc.stdout


def stanzas(text: str):
    """The deb822 stanzas of an index: {field: value}, continuation lines joined by '\\n'."""
    for block in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line and not line.startswith("#"):
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package"):
            yield fields


def build_depends(stanza: dict) -> list[tuple[list[str], str]]:
    """Each build-dependency clause: (the package names of its alternatives, the clause)."""
    clauses = []
    for field in ("Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep"):
        for clause in stanza.get(field, "").replace("\n", " ").split(","):
            clause = clause.strip()
            if clause:
                names = [m[1] for m in (re.match(r"([a-z0-9][a-z0-9+.-]*)", alt.strip())
                                        for alt in clause.split("|")) if m]
                clauses.append((names, clause))
    return clauses


def source_bytes(stanza: dict) -> int:
    return sum(int(parts[1]) for parts in (line.split() for line in
                                           stanza.get("Files", "").splitlines())
               if len(parts) == 3 and parts[1].isdigit())


def ships_a_program(stanza: dict) -> bool:
    for line in stanza.get("Package-List", "").splitlines():
        parts = line.split()
        if len(parts) < 5 or parts[1] != "deb":
            continue
        name, section, arch = parts[0], parts[2].rsplit("/", 1)[-1], parts[4]
        arches = set(arch.removeprefix("arch=").split(","))
        if (arches & ARCHITECTURES and not name.startswith("lib")
                and not name.endswith(NOT_A_PROGRAM_SUFFIXES)
                and section not in NOT_A_PROGRAM_SECTIONS):
            return True
    return False


def rejection(stanza: dict) -> str | None:
    """Why a stanza is not a candidate (the criterion, as in the module's docstring), or None."""
    if stanza.get("Extra-Source-Only") == "yes":
        return "extra-source-only"
    if not set(stanza.get("Architecture", "").split()) & ARCHITECTURES:
        return "no architecture-dependent code"
    clauses = build_depends(stanza)
    names = {name for alternatives, _ in clauses for name in alternatives}
    if names & OTHER_LANGUAGE:
        return "another language's build"
    if not names & {"debhelper-compat", "debhelper"}:
        return "not built by debhelper"
    if len(clauses) > MAX_BUILD_DEPENDS:
        return f"more than {MAX_BUILD_DEPENDS} build-dependencies"
    if source_bytes(stanza) > MAX_SOURCE_BYTES:
        return f"more than {MAX_SOURCE_BYTES // 1_000_000} MB of source"
    if not ships_a_program(stanza):
        return "no program package"
    return None


def candidates(text: str) -> list[str]:
    """The candidates of an index's text, sorted (a package listed twice counts once)."""
    return sorted({s["Package"] for s in stanzas(text) if rejection(s) is None})


def sample(n: int, seed: int, text: str | None = None,
           served: Callable[[str], bool] = source_served) -> tuple[list[str], list[str]]:
    """N candidates in the seeded order whose sources are served, and the ones skipped before
    them because they are not (the index apt has, unless text is given)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SampleError(f"-n: expected a number of packages of at least 1, not {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SampleError(f"-seed: expected an integer, not {seed!r}")
    order = candidates(read_index(sources_index()) if text is None else text)
    if n > len(order):
        raise SampleError(f"-n: only {len(order)} source packages meet the rule, not {n}")
    random.Random(seed).shuffle(order)
    chosen: list[str] = []
    unserved: list[str] = []
    for name in order:
        if len(chosen) == n:
            break
        (chosen if served(name) else unserved).append(name)
    if len(chosen) < n:
        raise SampleError(f"-n: only {len(chosen)} of the {len(order)} source packages that "
                          f"meet the rule are served by the mirror, not {n}")
    return chosen, unserved
