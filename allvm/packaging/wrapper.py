"""allcc / allc++: a drop-in CC/CXX that also keeps every translation unit's bitcode.

Each C/C++ source is compiled twice with the user's flags: once to the object the build asked
for, once (quietly, at the same time) with `-emit-llvm` to a hidden `.<object>.bc` beside it.
The object then gets a `.llvm_bc` section naming that bitcode file (see allvm.packaging.wllvm), so
whatever the build does with the object — archive it, link it into a program or a shared
library — the list of bitcode files travels along. Everything else (preprocessing, `-S`,
dependency-only runs, links of objects, `--version`) goes to the bundled clang unchanged, so
autotools' configure sees an ordinary compiler.

For the gnu target (ALLVM_CC_TARGET=x86_64-linux-gnu) the build is against the host's
libraries, as Debian's gcc builds: the host's headers come after the libc's
(`-idirafter /usr/include/x86_64-linux-gnu /usr/include`), its library directories are searched
by links, and `-dumpmachine` answers `x86_64-linux-gnu` as Debian's gcc does (dpkg and
debhelper compare it with the build architecture). The `-L` directories of a link are recorded
in the output's `.llvm_bc_libdirs` section, so extraction finds the library the program was
linked against. Options this compiler cannot honour are dropped with a note (DROPPED_OPTIONS):
a build's flags never fail the build for that alone.

C++ for the gnu target is Debian's: compiled against libstdc++'s headers (g++'s
`/usr/include/c++/12`..., in place of zig's libc++) and linked against Debian's
libstdc++.so.6 and libgcc_s.so.1, dynamically, as g++ links them, so a program passes a
`std::string` to a Debian C++ library (Boost...) and catches its exceptions. zig's driver
puts its own libc's headers ahead of any `-isystem`, and libstdc++'s must come first (its
`<cmath>`/`<math.h>` wrap the libc's with `#include_next`): they are `-I` directories after
the build's own (every libstdc++ header says `#pragma GCC system_header`, so they stay system
headers). zig takes `-lstdc++` for its libc++: a link gets `-nostdlib++` and the libraries by
path instead. Each C++ translation unit names libstdc++ as a dependent library (in its
bitcode and object), so its module tells the platform which C++ runtime to link
(allvm.platform.cxx). The musl target keeps zig's libc++, static.
"""

import os
import re
import subprocess
import sys
import tempfile

from allvm.packaging.wllvm import LIBDIRS_SECTION, record_bitcode_path
from allvm.toolchain import MUSL_TARGET, is_gnu, zig_command, zig_env

TARGET_VARIABLE = "ALLVM_CC_TARGET"

C_SUFFIXES = {".c": "c", ".i": "c"}
CXX_SUFFIXES = {".cc": "c++", ".cp": "c++", ".cpp": "c++", ".cxx": "c++", ".c++": "c++",
                ".C": "c++", ".CPP": "c++", ".ii": "c++"}
ASM_SUFFIXES = {".s": "assembler", ".S": "assembler-with-cpp", ".sx": "assembler-with-cpp"}
IR_LANGUAGES = {"c", "c++", "cpp-output", "c++-cpp-output"}
CXX_LANGUAGES = {"c++", "c++-cpp-output", "c++-header"}

# Options whose value is the next argument (when not joined to them).
_WITH_VALUE = {
    "-o", "-x", "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter",
    "-iprefix", "-iwithprefix", "-iwithprefixbefore", "-isysroot", "--sysroot", "-MF", "-MT",
    "-MQ", "-L", "-l", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-Xclang", "-target",
    "--target", "-T", "-u", "-z", "-e", "-arch", "-mllvm", "-aux-info", "-dumpbase",
    "-dumpdir", "-imultilib",
}
# Options that stop the compiler before an object exists: nothing to add.
_NO_OBJECT = {"-E", "-M", "-MM", "-S", "-fsyntax-only", "-emit-llvm", "-###", "-v", "--version",
              "-dumpversion", "-dumpmachine", "--help"}
# Dependency-file options: the bitcode compile must not write (or retarget) the .d file.
_DEPENDENCY = {"-MD", "-MMD", "-MP", "-MG"}
# Links that make no executable: they get no platform objects.
_NOT_EXECUTABLE = {"-shared", "-r", "-nostdlib", "-nodefaultlibs", "-nostartfiles"}
# Options that stop the compiler before a link (besides -print-*): no C++ runtime to add.
_NO_LINK = {"-c", "-E", "-M", "-MM", "-S", "-fsyntax-only", "-emit-llvm", "--version",
            "-dumpversion", "-dumpmachine", "--help"}
# Links that get no C++ standard library from g++ (nor, then, from allc++).
_NO_CXX_LIBRARY = {"-nostdlib", "-nodefaultlibs", "-nostdlib++", "-r"}
# Linker-only options, left out of the compile steps of a compile-and-link call.
_LINK_ONLY = {"-shared", "-static", "-rdynamic", "-s", "-pie", "-no-pie", "-nostdlib",
              "-nostartfiles", "-nodefaultlibs"}
_LINK_ONLY_WITH_VALUE = {"-L", "-l", "-Xlinker", "-T", "-u", "-z", "-e"}
# The host's headers and libraries, for the gnu target (Debian's multiarch layout).
HOST_INCLUDE_DIRS = ("/usr/include/x86_64-linux-gnu", "/usr/include")
# gcc's search order for Debian's libraries: multiarch first, then the directories that
# packages without multiarch still install into (libax25-dev: /usr/lib/libax25.so).
HOST_LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib", "/lib")
TRADITIONAL = {"-traditional", "-traditional-cpp"}
GCC = "/usr/bin/gcc"
# Options dropped, with the reason noted on stderr (prefix match).
DROPPED_OPTIONS = {
    "-flto": "link-time optimization would make objects bitcode; allcc keeps each unit's "
             "bitcode itself, and alley and allready optimize it",
    "-specs": "a gcc spec file (dpkg's choice of PIE or not); clang ignores it, with a "
              "warning that -Werror would make an error",
    "-Wl,-Bsymbolic-functions": "zig's linker driver does not accept it (binds a library's "
                                "own calls early; no change in behaviour without interposition)",
}
# Warnings that glibc's own headers give under clang, kept but never errors (-Werror): its
# _FORTIFY_SOURCE wrappers (sprintf...) are marked unused, so `-Wused-but-marked-unused`
# fires on every call (cjson adds it with -Werror when the compiler is clang; gcc has no
# such warning, so Debian's build never meets it).
#
# And the diagnostics that clang (since 15/16) makes errors by default where the compiler the
# gnu target stands in for, bookworm's gcc 12, only warns (gcc 14 made them errors too): a
# call to an undeclared function, a declaration without a type (`main() {...}`), an int
# used as a pointer, an incompatible function pointer. Old C (ucspi-tcp) and configure
# probes (galera's `__atomic_fetch_add_8` check, a gcc builtin) build with Debian's gcc and
# failed with clang. A package that asks for the error itself (`-Werror=implicit-int`,
# after these) still gets it.
# The same for incompatible pointer types (djbdns: `unsigned long *` for `uint32 *`), and for
# `-Wdate-time`, which zig makes an error (`-Werror=date-time`) while Debian's flags ask only
# for the warning (makefile2graph prints __DATE__; SOURCE_DATE_EPOCH makes it reproducible).
GNU_WARNINGS_NOT_ERRORS = ["-Wno-error=used-but-marked-unused",
                           "-Wno-error=implicit-function-declaration", "-Wno-error=implicit-int",
                           "-Wno-error=int-conversion",
                           "-Wno-error=incompatible-function-pointer-types",
                           "-Wno-error=incompatible-pointer-types", "-Wno-error=date-time"]


class Source:
    """One input file, with the language clang will treat it as."""

    def __init__(self, path: str, language: str | None, explicit: bool):
        self.path = path
        self.language = language
        self.explicit = explicit  # given by `-x`, so it must be repeated for this file alone

    @property
    def has_ir(self) -> bool:
        return self.language in IR_LANGUAGES

    @property
    def compiles(self) -> bool:
        return self.has_ir or (self.language or "").startswith("assembler")

    def args(self) -> list[str]:
        return ["-x", self.language, self.path] if self.explicit else [self.path]


def language_of(path: str, cxx: bool) -> str | None:
    suffix = os.path.splitext(path)[1]
    if suffix in C_SUFFIXES:
        return "c++" if cxx and suffix == ".c" else C_SUFFIXES[suffix]
    return CXX_SUFFIXES.get(suffix) or ASM_SUFFIXES.get(suffix)


class Invocation:
    """A compiler command line, split into options (each with its value) and input files."""

    def __init__(self, argv: list[str], cxx: bool):
        self.argv = argv
        self.options: list[list[str]] = []
        self.inputs: list[Source] = []
        self.output: str | None = None
        language = None
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg in _WITH_VALUE and i + 1 < len(argv):
                option = [arg, argv[i + 1]]
                i += 2
            else:
                option = [arg]
                i += 1
            if option[0] == "-o" and len(option) == 2:
                self.output = option[1]
            elif option[0] == "-x" and len(option) == 2:
                language = None if option[1] == "none" else option[1]
            elif arg.startswith("-x") and len(arg) > 2:
                language = None if arg[2:] == "none" else arg[2:]
            elif arg.startswith("-") and arg != "-":
                self.options.append(option)
            else:
                self.inputs.append(Source(arg, language or language_of(arg, cxx),
                                          language is not None))

    def has(self, *names: str) -> bool:
        return any(option[0] in names for option in self.options)

    @property
    def chooses_target(self) -> bool:
        """Whether the command names its own target (allcc then adds none of its own)."""
        return self.has("-target", "--target") or any(o[0].startswith("--target=")
                                                      for o in self.options)

    @property
    def uses_libstdcxx(self) -> bool:
        """Whether its C++ is Debian's libstdc++'s: the gnu target, not one it chose."""
        return is_gnu(target()) and not self.chooses_target

    @property
    def has_cxx(self) -> bool:
        return any(source.language in CXX_LANGUAGES for source in self.inputs)

    @property
    def links(self) -> bool:
        """Whether the command ends in a link (of whatever it compiles first)."""
        return bool(self.inputs) and not (self.has(*_NO_LINK) or any(
            o[0].startswith("-print-") for o in self.options))

    @property
    def produces_object(self) -> bool:
        return not (self.has(*_NO_OBJECT) or any(o[0].startswith("-print-") for o in self.options)
                    or any(s.path == "-" for s in self.inputs))

    def compile_options(self, *, for_bitcode: bool) -> list[str]:
        """The options for compiling one source on its own (`-c` added by the caller)."""
        args = []
        for option in self.options:
            name = option[0]
            if name == "-c" or _is_link_only(name):
                continue
            if for_bitcode and _is_dependency(name):
                continue
            args += option
        return args


    def link_options(self) -> list[str]:
        """The options for the link step (dependency-file options belong to the compiles)."""
        return [a for option in self.options if not _is_dependency(option[0]) for a in option]


def _is_link_only(name: str) -> bool:
    return (name in _LINK_ONLY or name in _LINK_ONLY_WITH_VALUE
            or name.startswith(("-Wl,", "-l", "-L")))


def _is_dependency(name: str) -> bool:
    return name in _DEPENDENCY or name.startswith(("-MF", "-MT", "-MQ", "-Wp,-MD", "-Wp,-MMD"))


def target() -> str:
    return os.environ.get(TARGET_VARIABLE) or MUSL_TARGET


def compile_target(invocation: Invocation) -> str:
    """The target given to zig: for an unversioned gnu target, at the host's glibc version
    (`x86_64-linux-gnu.2.36` on bookworm), as the platform links gnu programs. Unversioned,
    zig compiles against glibc 2.31's headers and links its 2.31 stubs, so a link with a
    Debian library needing a newer symbol (libssl.so.3: `stat@GLIBC_2.33`) fails (galera-3).

    Not when an input's suffix is one zig does not know (bzip2 links `.sho` objects): zig then
    hands the whole command to clang with the target as given, and clang refuses a triple
    with zig's `.2.36` version; such a command keeps the unversioned target, as before."""
    triple = target()
    glibc = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names \
        else None
    if (not is_gnu(triple) or "." in triple or not glibc or not glibc.startswith("glibc ")
            or not all(zig_knows(source.path) for source in invocation.inputs)):
        return triple
    return f"{triple}.{glibc.split()[-1]}"


# Input suffixes zig's cc driver handles itself (sources, objects, archives, libraries).
ZIG_SUFFIXES = {*C_SUFFIXES, *CXX_SUFFIXES, *ASM_SUFFIXES, ".h", ".hh", ".hpp", ".hxx", ".ii",
                ".o", ".obj", ".a", ".lib", ".so", ".ll", ".bc", ".m", ".mm"}


def zig_knows(path: str) -> bool:
    if re.search(r"\.so(\.\d+)*$", path):
        return True
    return os.path.splitext(path)[1] in ZIG_SUFFIXES


def base_options(invocation: Invocation) -> list[str]:
    """What allcc adds in front of the user's flags: the target (unless the user chose one),
    and no sanitizers: zig turns UBSan on by default in unoptimized builds, which a drop-in
    `cc` must not do (its runtime is not part of the allexe platform)."""
    chosen = invocation.chooses_target
    options = [] if chosen else ["-target", compile_target(invocation)]
    if not chosen and is_gnu(target()):
        options += [a for d in HOST_INCLUDE_DIRS for a in ("-idirafter", d)]
        options += GNU_WARNINGS_NOT_ERRORS
    return options + ["-fno-sanitize=undefined"]


def libstdcxx_compile_options(invocation: Invocation, cxx_source: bool) -> list[str]:
    """What a compile of C++ for the gnu target adds after the build's own options: libstdc++'s
    headers instead of libc++'s, and libstdc++ as the unit's dependent library."""
    if not (cxx_source and invocation.uses_libstdcxx):
        return []
    from allvm.platform import cxx

    return ["-nostdinc++", *(f"-I{d}" for d in cxx.libstdcxx_include_dirs()),
            "-Xclang", f"--dependent-lib={cxx.libstdcxx_path()}"]


def libstdcxx_link_options(invocation: Invocation, cxx: bool) -> list[str]:
    """What a link by allc++ for the gnu target adds at its end, as g++ links: not zig's
    libc++ but Debian's libstdc++ (by path: see above); nothing for links g++ would give no
    C++ library either (-nostdlib, -r...)."""
    if not (cxx and invocation.uses_libstdcxx and invocation.links) or invocation.has(
            *_NO_CXX_LIBRARY):
        return []
    from allvm.platform import cxx as runtime

    return ["-nostdlib++", *runtime.libstdcxx_libraries()]


def with_libstdcxx_by_path(argv: list[str]) -> list[str]:
    """The command line with `-lstdc++` (which zig links as its libc++) as Debian's libstdc++
    and libgcc_s by path, for the gnu target."""
    if "-lstdc++" not in argv and not any(
            a == "-l" and b == "stdc++" for a, b in zip(argv, argv[1:], strict=False)):
        return argv
    from allvm.platform import cxx

    libraries = cxx.libstdcxx_libraries()
    out, i = [], 0
    while i < len(argv):
        joined, separate = argv[i] == "-lstdc++", argv[i:i + 2] == ["-l", "stdc++"]
        if joined or separate:
            out += ["-nostdlib++", *libraries]
        else:
            out.append(argv[i])
        i += 2 if separate else 1
    return out


def gnu_link_options(invocation: Invocation) -> list[str]:
    """What a link for the gnu target adds, as Debian's gcc and GNU ld would have it: the
    host's library directories, searched after the link's own (zig's driver resolves `-lz`
    through them), and a version script that may name a symbol the output does not define
    (lld refuses one; zlib's configure probes shared libraries with its whole zlib.map,
    lua5.4's script names glibc's _IO_stdin_used)."""
    if not invocation.uses_libstdcxx or invocation.has("-c", *_NO_OBJECT):
        return []
    return [*(f"-L{d}" for d in HOST_LIBRARY_DIRS), "-Wl,--undefined-version"]


def platform_link_args(invocation: Invocation) -> list[str]:
    """What the platform adds to a link of an executable (allvm.platform: the libc fixes for
    musl), so a program built natively behaves like its allexe; nothing for other links."""
    from allvm.platform import Needs, libc, link_inputs

    chosen = [o[-1].removeprefix("--target=") for o in invocation.options
              if o[0] in ("-target", "--target") or o[0].startswith("--target=")]
    triple = chosen[-1] if chosen else target()
    if is_gnu(triple) or invocation.has(*_NOT_EXECUTABLE):
        return []
    return [*libc.link_flags(), *link_inputs([], Needs(triple))]


def zig_cc(cxx: bool, args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(zig_command("c++" if cxx else "cc", *args), env=zig_env(), **kwargs)


def hidden_bitcode_path(object_path: str) -> str:
    """Where an object's bitcode lives: hidden, beside the object (`dir/.name.o.bc`)."""
    directory, name = os.path.split(os.path.abspath(object_path))
    return os.path.join(directory, f".{name}.bc")


def compile_source(invocation: Invocation, source: Source, object_path: str, bitcode: str,
                   cxx: bool) -> int:
    """Compile one source to `object_path`; for C/C++ also to `bitcode`, recorded in a section.

    An assembly source records its own path instead: it has no bitcode, and extraction says so.
    The two compiles run at the same time; the user sees the object compile's diagnostics only.
    """
    base = base_options(invocation)
    after = libstdcxx_compile_options(invocation, source.language in CXX_LANGUAGES)
    quiet = None
    if source.has_ir:
        quiet = zig_cc(cxx, [*base, *invocation.compile_options(for_bitcode=True), *after,
                             "-w", "-c", "-emit-llvm", *source.args(), "-o", bitcode],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status = zig_cc(cxx, [*base, *invocation.compile_options(for_bitcode=False), *after, "-c",
                          *source.args(), "-o", object_path]).wait()
    if quiet is not None:
        _, errors = quiet.communicate()
        if status == 0 and quiet.returncode != 0:
            sys.stderr.write(errors.decode(errors="replace"))
            sys.stderr.write(f"allcc: compiling '{source.path}' to bitcode failed\n")
            return quiet.returncode
    if status == 0:
        record_bitcode_path(object_path, bitcode if source.has_ir else source.path)
    return status


def default_object(source: Source) -> str:
    return os.path.splitext(os.path.basename(source.path))[0] + ".o"


def is_object_file(path: str) -> bool:
    """Whether an output path will be a file that can carry a section (configure compiles
    and links to `-o /dev/null` too; nothing is written beside a device)."""
    return path != "-" and (os.path.isfile(path) or not os.path.exists(path))


def compile_only(invocation: Invocation, cxx: bool) -> int:
    """`cc -c a.c b.c [-o x.o]`: one object (and bitcode) per source."""
    sources = [s for s in invocation.inputs if s.compiles]
    if (invocation.output and len(sources) > 1) or (
            invocation.output and not is_object_file(invocation.output)):
        return pass_through(invocation.argv, cxx)  # clang's own message / plain output
    for source in sources:
        obj = invocation.output or default_object(source)
        status = compile_source(invocation, source, obj, hidden_bitcode_path(obj), cxx)
        if status != 0:
            return status
    return 0


def compile_and_link(invocation: Invocation, cxx: bool) -> int:
    """`cc a.c b.o -o prog`: compile each source to a temporary object, then link as asked.

    The objects are temporary, the bitcode is not: it is kept beside the output, named after
    output and source (`.prog.a.o.bc`).
    """
    output = invocation.output or "a.out"
    out_dir, out_name = os.path.split(os.path.abspath(output))
    with tempfile.TemporaryDirectory(prefix="allcc-") as tmp:
        link_inputs = []
        for index, source in enumerate(invocation.inputs):
            if not source.compiles:
                link_inputs.append(source.path)
                continue
            obj_name = f"{out_name}.{os.path.splitext(os.path.basename(source.path))[0]}.o"
            obj = os.path.join(tmp, f"{index}-{obj_name}")
            status = compile_source(invocation, source, obj,
                                    os.path.join(out_dir, f".{obj_name}.bc"), cxx)
            if status != 0:
                return status
            link_inputs.append(obj)
        return zig_cc(cxx, [*base_options(invocation), *invocation.link_options(),
                            "-Qunused-arguments", *link_inputs,
                            *platform_link_args(invocation),
                            *libstdcxx_link_options(invocation, cxx),
                            *gnu_link_options(invocation), "-o", output]).wait()


def pass_through(argv: list[str], cxx: bool, *, link: bool = False) -> int:
    """Run the command as it is (with allcc's base options); `link`: it links an executable
    of objects, which gets the platform's additions."""
    invocation = Invocation(argv, cxx)
    extra = platform_link_args(invocation) if link else []
    return zig_cc(cxx, [*base_options(invocation), *argv,
                        *libstdcxx_compile_options(invocation, invocation.has_cxx), *extra,
                        *libstdcxx_link_options(invocation, cxx),
                        *gnu_link_options(invocation)]).wait()


def without_dropped(argv: list[str]) -> list[str]:
    """The command line without DROPPED_OPTIONS, each dropped one noted on stderr."""
    kept = []
    for arg in argv:
        reason = next((why for option, why in DROPPED_OPTIONS.items()
                       if arg == option or arg.startswith((option + "=", option + ","))), None)
        if reason is None:
            kept.append(arg)
        else:
            sys.stderr.write(f"allcc: note: dropped '{arg}': {reason}\n")
    return kept


def machine() -> str:
    """`-dumpmachine`'s answer: the target as Debian's compilers spell it (no vendor)."""
    return target().replace("-unknown-", "-")


def record_library_dirs(invocation: Invocation, output: str) -> None:
    """Give a linked program or library the `-L` directories of its link (absolute)."""
    from allvm.elf import Elf, is_elf

    dirs = [option[-1][2:] if option[0] != "-L" else option[1] for option in invocation.options
            if option[0].startswith("-L") and (len(option[0]) > 2 or len(option) == 2)]
    if not dirs or not os.path.isfile(output):
        return
    with open(output, "rb") as f:
        data = f.read()
    if not is_elf(data):
        return
    elf = Elf(data, output)
    if elf.section(LIBDIRS_SECTION) is not None:
        return
    listed = "".join(os.path.abspath(d) + "\n" for d in dict.fromkeys(dirs))
    tmp = f"{output}.allvm-tmp"
    with open(tmp, "wb") as f:
        f.write(elf.with_section(LIBDIRS_SECTION, listed.encode()))
    os.chmod(tmp, os.stat(output).st_mode & 0o7777)
    os.replace(tmp, output)


def traditional_preprocessing(argv: list[str]) -> bool:
    """`-E -traditional[-cpp]` where GCC is installed: imake runs `gcc -E -traditional` over
    its templates, which paste names across comments (`a/**/b`) as only GCC's traditional
    preprocessor does (clang's leaves a space: `<X11 .rules>`, pacman). The output is text,
    no code, so Debian's GCC makes it and no IR is lost."""
    return "-E" in argv and bool(TRADITIONAL & set(argv)) and os.access(GCC, os.X_OK)


def main(argv: list[str], cxx: bool) -> int:
    """Run one compiler command line the way clang would, keeping bitcode on the side."""
    argv = without_dropped(argv)
    if argv == ["-dumpmachine"]:
        print(machine())
        return 0
    if traditional_preprocessing(argv):
        os.execv(GCC, [GCC, *argv])
    if Invocation(argv, cxx).uses_libstdcxx:
        argv = with_libstdcxx_by_path(argv)
    invocation = Invocation(argv, cxx)
    if not invocation.inputs or not invocation.produces_object:
        return pass_through(argv, cxx)
    if invocation.has("-c"):
        return compile_only(invocation, cxx)
    if not is_object_file(invocation.output or "a.out"):
        return pass_through(argv, cxx)
    if not any(s.compiles for s in invocation.inputs):
        status = pass_through(argv, cxx, link=True)  # a link of objects: sections come along
    else:
        status = compile_and_link(invocation, cxx)
    if status == 0:
        record_library_dirs(invocation, invocation.output or "a.out")
    return status
