"""The platform as IR: zig's static musl as bitcode members, over a native runtime ("libnone").

`zig cc -target x86_64-linux-musl -static` links crt1.o, libc.a (musl's C and `.s` files),
libzigc.a (zig's `lib/c.zig`: malloc, qsort, most of string.h...) and libcompiler_rt.a. Which
files and functions are where changes between zig versions, so the list comes from zig itself:
a link with a fresh cache and `--verbose-cc --verbose-link` prints every libc compile with its
flags and the final link line. From that this module builds, once per zig binary, in zig's
cache directory:

- `members/*.bc`: every musl C file compiled to bitcode with zig's own flags, and `lib/c.zig`
  as one more member; an index of what each defines and strongly needs (archive semantics).
  The platform's libc fixes (allvm.platform.libc), allocator (allvm.platform.malloc) and
  string functions (allvm.platform.strings) come first, so their definitions are the ones
  chosen; where a native link wraps a libc function (`ld --wrap=realloc`), the fixes define it
  and the member that defined it calls its own `__real_realloc`, as --wrap leaves it.
- the native runtime, as ALLVM called the part of the platform that stays native: crt1.o, the
  `.s` files (libnone.a: syscalls with cancellation, clone, setjmp, x87 math...) and
  libcompiler_rt.a (memcpy and memset, which code generation itself emits calls to).

Attribute policy. musl is compiled with -fno-builtin and -frounding-math, so each of its
functions carries `no-builtins` and `strictfp`, and LLVM never inlines such a function into
program code (getc stays a call). A member without floating-point operations has no rounding
or exception behaviour to protect, and unless it implements what the optimizer would turn into
a call of itself (string, memory and math routines), no builtin to hide: such members lose
both attributes, so their functions inline into the program. Members with floating-point
operations (printf's %f, strtod) and those under KEEP_ATTRIBUTES keep them: they honour the
rounding mode and exception flags (fenv.h) exactly as the native musl does.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable

from allvm.errors import AllvmError
from allvm.platform import libc, malloc, strings
from allvm.toolchain import MUSL_TARGET, zig_binary, zig_cache_dir, zig_env

# Bump when the layout or the content of a build changes.
BUILD_FORMAT = 5
# At most this many compilers at once: the machines this runs on are small and shared.
JOBS = 2
# The triple every member is given, the one program modules for musl carry.
MEMBER_TRIPLE = "x86_64-unknown-linux-musl"
# musl directories whose members keep no-builtins and strictfp (see the module's docstring).
KEEP_ATTRIBUTES = ("src/math/", "src/complex/", "src/fenv/", "src/string/", "src/malloc/")
# The global a platform-IR program's main.bc defines: "link me with the native runtime only".
MARKER = "__allvm_platform_libc_ir"
INDEX = "index.json"
ZIGC_MEMBER = "zigc.bc"
FIXES_MEMBER = "fixes.bc"
ALLOCATOR_MEMBER = "allocator.bc"
STRINGS_MEMBER = "strings.bc"
# The native runtime a platform-IR program is linked with: START first, then its object, then
# the ARCHIVES (musl's .s files; compiler_rt).
START, ARCHIVES = "crt1.o", ("libnone.a", "libcompiler_rt.a")

Progress = Callable[[str], None]


def platform_dir() -> str:
    """Where this zig's platform IR lives: zig's cache directory, keyed by the zig binary and
    what the platform's own members are made from (new fixes, string functions or allocator
    get a new build)."""
    from _blake2 import blake2b

    zig = os.stat(zig_binary())
    key = json.dumps([BUILD_FORMAT, zig.st_size, zig.st_mtime_ns, libc.SOURCE, strings.SOURCE,
                      malloc.identity()]).encode()
    return os.path.join(zig_cache_dir(),
                        f"allvm-platform-ir-{blake2b(key, digest_size=8).hexdigest()}")


class PlatformIR:
    """A built platform: the libc members (bitcode) and the native runtime, with their symbols.

    `members` maps a member's name to (defined symbols, strongly needed symbols); `natives`
    does the same for the native runtime's objects; START (crt1.o) is always linked.
    """

    def __init__(self, root: str, index: dict):
        self.root = root
        self.members: dict[str, tuple[set[str], set[str]]] = {
            name: (set(defines), set(needs)) for name, defines, needs in index["members"]}
        self.natives: dict[str, tuple[set[str], set[str]]] = {
            name: (set(defines), set(needs)) for name, defines, needs in index["natives"]}
        self.build_seconds: float | None = index.get("build_seconds")
        # The first member that defines a symbol provides it, as in an archive's symbol table.
        self.member_of: dict[str, str] = {}
        for name, (defines, _) in self.members.items():
            for symbol in defines:
                self.member_of.setdefault(symbol, name)
        self.native_of: dict[str, str] = {}
        for name, (defines, _) in self.natives.items():
            for symbol in defines:
                self.native_of.setdefault(symbol, name)

    def member_path(self, name: str) -> str:
        return os.path.join(self.root, "members", name)


def load(progress: Progress = lambda message: None) -> PlatformIR:
    """The platform IR of this zig, built first if it is not there yet."""
    root = platform_dir()
    try:
        with open(os.path.join(root, INDEX)) as f:
            return PlatformIR(root, json.load(f))
    except (OSError, ValueError, KeyError):
        pass
    build(root, progress)
    with open(os.path.join(root, INDEX)) as f:
        return PlatformIR(root, json.load(f))


def build(root: str, progress: Progress) -> None:
    """Build the platform IR into `root` (appears atomically: built beside it, then renamed)."""
    import tempfile
    import time

    started = time.monotonic()
    os.makedirs(os.path.dirname(root), exist_ok=True)
    _sweep_abandoned(root)
    work = tempfile.mkdtemp(prefix=f"{os.path.basename(root)}.{os.getpid()}-",
                            dir=os.path.dirname(root))
    try:
        progress("Building the platform IR (libc as bitcode) for this zig, once...")
        compiles, link = _zig_libc_commands(work, progress)
        out = os.path.join(work, "build")
        os.makedirs(os.path.join(out, "members"))
        c_files = [c for c in compiles if _source(c).endswith(".c") and "/crt/" not in _source(c)]
        asm_files = [c for c in compiles if _source(c).endswith((".s", ".S"))]
        own = [_fixes_member(out), _allocator_member(out), _string_member(out)]
        members = _own_first(own, [*_compile_members(c_files, out, progress),
                                   _zig_member(out, progress)])
        index = {"format": BUILD_FORMAT, "members": members,
                 "natives": _native_runtime(asm_files, link, work, out),
                 "build_seconds": round(time.monotonic() - started, 1)}
        with open(os.path.join(out, INDEX), "w") as f:
            json.dump(index, f)
        try:
            os.rename(out, root)
        except OSError:  # a concurrent build finished first: its result is as good as ours
            if not os.path.exists(os.path.join(root, INDEX)):
                raise
        progress(f"Platform IR built in {time.monotonic() - started:.0f} s: {root}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _own_first(own: list, libc_members: list) -> list:
    """The platform's own members, then the libc's, indexed so that no libc member claims a
    symbol an own member defines. As in a native link, where the platform's objects come
    before the libc archives, their definitions are the ones linked: a libc member pulled in
    for another symbol (zig's lib/c.zig member defines strchr and qsort alike) must not stand
    for them in the archive-style selection."""
    provided = {symbol for _, defines, _ in own for symbol in defines}
    return own + [[name, [d for d in defines if d not in provided], needs]
                  for name, defines, needs in libc_members]


def _sweep_abandoned(root: str) -> None:
    """Remove what builds killed midway left beside `root` (named `<root>.<pid>-...`)."""
    from allvm.cache import process_alive

    parent, prefix = os.path.dirname(root), os.path.basename(root) + "."
    for name in os.listdir(parent):
        pid = name[len(prefix):].split("-", 1)[0]
        if name.startswith(prefix) and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _zig_libc_commands(work: str, progress: Progress) -> tuple[list[list[str]], list[str]]:
    """Every command zig runs to build its musl for a static link, and the link command:
    zig prints them when it builds with a fresh cache (about a minute of native compiles)."""
    progress("  asking zig how it builds musl (a link with a fresh cache)...")
    source = os.path.join(work, "empty.c")
    with open(source, "w") as f:
        f.write("int main(void) { return 0; }\n")
    env = zig_env()
    fresh = os.path.join(work, "zig-cache")
    env["ZIG_GLOBAL_CACHE_DIR"] = env["ZIG_LOCAL_CACHE_DIR"] = fresh
    proc = subprocess.run(
        [zig_binary(), "build-exe", "-target", MUSL_TARGET, "-lc", "-O", "ReleaseFast",
         "--verbose-cc", "--verbose-link", "--name", "empty", f"-femit-bin={work}/empty",
         source], cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AllvmError(f"zig's musl build failed: {proc.stderr.strip()}")
    commands = [line.split() for line in proc.stderr.splitlines()]
    compiles = [c for c in commands if len(c) > 2 and c[1] == "clang" and "/musl/" in c[2]]
    links = [c for c in commands if c and c[0] == "ld.lld" and "-r" not in c]  # not crt1's
    if not compiles or len(links) != 1:
        raise AllvmError("zig did not print its musl build (unexpected zig version?)")
    # Relative paths in zig's printout are relative to its working directory.
    link = [os.path.join(work, t) if t.endswith((".o", ".a")) and not os.path.isabs(t) else t
            for t in links[0]]
    return compiles, link


def _source(command: list[str]) -> str:
    return command[2]


def _member_name(source: str) -> str:
    """`.../musl/src/stdio/getc.c` → `src%stdio%getc.c.bc` (unique, readable, flat)."""
    return source.split("/musl/", 1)[1].replace("/", "%") + ".bc"


def _retargeted(command: list[str], output: str, *extra: str) -> list[str]:
    """zig's compile of a musl file into `output`, without debug info or dependency files."""
    out, tokens = [], iter(command)
    for token in tokens:
        if token in ("-MD", "-MV", "-gdwarf-4", "-gdwarf32", "-g"):
            continue
        if token in ("-MF", "--serialize-diagnostics", "-o"):
            next(tokens, None)
            continue
        out.append(token)
    return [*out, "-g0", *extra, "-o", output]


def _compile_members(commands: list[list[str]], out: str, progress: Progress) -> list:
    """Every musl C file as a member, JOBS at a time; their index entries, in zig's order."""
    from allvm.parallel import process_pool

    jobs = [(c, os.path.join(out, "members", _member_name(_source(c)))) for c in commands]
    results = []
    with process_pool(len(jobs), workers=JOBS) as pool:
        for done, entry in enumerate(pool.map(_member, *zip(*jobs, strict=True),
                                              chunksize=8), 1):
            results.append(entry)
            if done % 100 == 0 or done == len(jobs):
                progress(f"  {done}/{len(jobs)} musl files compiled to IR")
    return results


def _member(command: list[str], path: str) -> list:
    """Compile one musl file to bitcode and index it (runs in a worker)."""
    proc = subprocess.run(_retargeted(command, path, "-emit-llvm"), env=zig_env(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AllvmError(f"compiling {_source(command)} to IR failed: {proc.stderr.strip()}")
    keep = any(d in _source(command) for d in KEEP_ATTRIBUTES)
    return _finish_member(path, keep_attributes=keep)


def _fixes_member(out: str) -> list:
    """The platform's libc fixes as a member (they keep their attributes: memccpy's loop must
    not become a call of memccpy)."""
    path = os.path.join(out, "members", FIXES_MEMBER)
    libc.fix_member(path)
    return _finish_member(path, keep_attributes=True, libc_member=False)


def _allocator_member(out: str) -> list:
    """The platform's allocator (allvm.platform.malloc) as a member, before musl's and zig's
    members, so its malloc is the one chosen; its realloc becomes `__real_realloc` as a libc
    member's does (the fixes wrap it). It keeps its attributes, as musl's malloc does."""
    path = os.path.join(out, "members", ALLOCATOR_MEMBER)
    malloc.allocator_member(path)
    return _finish_member(path, keep_attributes=True)


def _string_member(out: str) -> list:
    """The platform's string functions (allvm.platform.strings) as a member, before zig's
    (they keep their attributes: strlen's loop must not become a call of strlen)."""
    path = os.path.join(out, "members", STRINGS_MEMBER)
    strings.string_member(path)
    return _finish_member(path, keep_attributes=True)


def _zig_member(out: str, progress: Progress) -> list:
    """zig's `lib/c.zig` (libzigc) as one member, in the mode zig builds it for -O2 links."""
    progress("  compiling zig's lib/c.zig to IR...")
    path = os.path.join(out, "members", ZIGC_MEMBER)
    source = os.path.join(os.path.dirname(zig_binary()), "lib", "c.zig")
    proc = subprocess.run([zig_binary(), "build-obj", "-target", MUSL_TARGET, "-lc", "-O",
                           "ReleaseFast", source, f"-femit-llvm-bc={path}", "-fno-emit-bin"],
                          env=zig_env(), capture_output=True, text=True, cwd=out)
    if proc.returncode != 0:
        raise AllvmError(f"compiling lib/c.zig to IR failed: {proc.stderr.strip()}")
    return _finish_member(path, keep_attributes=True)


_ATTRIBUTE_GROUP = re.compile(r"^attributes #\d+ = \{.*\}$", re.MULTILINE)
_INLINE_BLOCKERS = re.compile(r' (strictfp|nobuiltin|"no-builtins")(?= )')
_TRIPLE = re.compile(r'^target triple = ".*"$', re.MULTILINE)
_ALIAS = re.compile(r'^(@"[^"]+"|@[^ ]+) = ((?:\w+ )*)alias ', re.MULTILINE)
_LOCAL_ALIAS = re.compile(r'^@([-\w$.]+) = ((?:\w+ )*)alias [^\n]*, ptr @([-\w$.]+)\n',
                          re.MULTILINE)
_LOCAL_DEFINE = r"^define (?:internal|private) ((?:[^@\n]*)@{name}\()"


def _aliases_as_functions(text: str) -> str:
    """Give a local function the name of its alias, and drop the alias.

    zig exports each libc function as an alias of a local one (`@qsort = weak_odr hidden
    alias ..., ptr @c.stdlib.qsort`), as musl does for its weak dummies: LLVM neither inlines
    nor specializes a call through an alias, and an alias keeps its function alive. Renamed,
    the function is called directly, and internalizing it lets dead code go. Only a function
    used by nothing but its one alias is renamed: where the alias is overridden by a strong
    definition, so is every use of the renamed function, which must then mean the alias.
    """
    from collections import Counter

    uses = Counter(re.findall(r"@([-\w$.]+)", text))
    renamed: dict[str, str] = {}
    for match in _LOCAL_ALIAS.finditer(text):
        name, words, target = match[1], match[2], match[3]
        define = re.compile(_LOCAL_DEFINE.format(name=re.escape(target)), re.MULTILINE)
        if uses[target] != 2 or not define.search(text):  # the definition and this alias
            continue
        renamed[target] = name
        linkage = " ".join(w for w in words.split() if not w.endswith("unnamed_addr"))
        text = text.replace(match[0], "", 1)
        text = define.sub(lambda m, words=linkage: f"define {words} {m[1]}", text, count=1)
    return _renamed(text, renamed)


def _renamed(text: str, names: dict[str, str]) -> str:
    """Every reference to a global named in `names` (`@old`) under its new name."""
    if not names:
        return text
    return re.sub(r"@([-\w$.]+)", lambda m: "@" + names.get(m[1], m[1]), text)


def _wrapped_as_real(text: str) -> str:
    """A libc member that defines a function the fixes wrap: the definition, and the member's
    own uses of it (which --wrap leaves alone too), become `__real_<name>`."""
    return _renamed(text, {name: f"__real_{name}" for name in libc.WRAPPED
                           if re.search(rf"^(define [^@\n]*@{name}\(|@{name} = )", text,
                                        re.MULTILINE)})


def _finish_member(path: str, *, keep_attributes: bool, libc_member: bool = True) -> list:
    """Rewrite a member (the musl triple; zig's aliases as functions; the wrapped functions of
    a libc member as `__real_*`; the attribute policy) and index it: [name, symbols it defines,
    symbols it strongly needs]."""
    from allvm.ir import llvm, parse_module, symbol_name

    context = llvm().create_context()  # one per member: a worker indexes hundreds
    with open(path, "rb") as f:
        text = str(parse_module(f.read(), path, context=context))
    text = _aliases_as_functions(_TRIPLE.sub(f'target triple = "{MEMBER_TRIPLE}"', text))
    if libc_member:
        text = _wrapped_as_real(text)
    if not keep_attributes and "llvm.experimental.constrained." not in text:
        text = _ATTRIBUTE_GROUP.sub(_without_inline_blockers, text)
    module = parse_module(text.encode(), path, context=context)
    with open(path, "wb") as f:
        f.write(module.as_bitcode())
    defines, needs = module_references(module)
    for match in _ALIAS.finditer(text):  # llvmlite lists no aliases: read them from the text
        if not re.search(r"\b(internal|private)\b", match[2]):
            defines.add(symbol_name(match[1]))
    return [os.path.basename(path), sorted(defines), sorted(needs - defines)]


def _without_inline_blockers(group: re.Match) -> str:
    """An attribute group without strictfp and no-builtins; a group left empty (a call site's
    `{ nobuiltin "no-builtins" }`) gets a placeholder, as IR has no empty groups."""
    text = _INLINE_BLOCKERS.sub("", group[0])
    return text.replace("{ }", '{ "allvm-libc-ir" }')


def module_references(module) -> tuple[set[str], set[str]]:
    """(symbols the module defines for others, symbols it strongly needs from outside).

    Needs are what pull an archive member: declarations that are not weak, and the library
    functions code generation will call for the intrinsics the module uses (llvm.acos.f80 is
    a call of acosl). Weak references pull nothing: musl's optional parts depend on it.
    """
    from itertools import chain

    defines, needs = set(), set()
    for value in chain(module.functions, module.global_variables):
        name = value.name
        if name.startswith("llvm."):
            if value.is_declaration:
                needs.update(intrinsic_libcalls(name))
        elif value.is_declaration:
            if value.linkage.name != "external_weak":
                needs.add(name)
        elif value.linkage.name not in ("internal", "private"):
            defines.add(name)
    return defines, needs


# Intrinsics that code generation may lower to a libm call on x86-64, by the call's base name
# (not fabs, copysign, sqrt: those are instructions).
_LIBM = {"sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "exp",
         "exp2", "exp10", "log", "log2", "log10", "pow", "fma", "floor", "ceil", "trunc",
         "rint", "nearbyint", "round", "roundeven", "lround", "llround", "lrint", "llrint",
         "ldexp", "frexp", "modf", "sincos", "fmod"}
_RENAMED = {"minnum": "fmin", "maxnum": "fmax", "minimumnum": "fmin", "maximumnum": "fmax"}
_SUFFIX = {"f32": "f", "f64": "", "f80": "l"}


def intrinsic_libcalls(name: str) -> list[str]:
    """The libc functions an intrinsic may become: `llvm.acos.f80` → [acosl]."""
    parts = name.removeprefix("llvm.").removeprefix("experimental.constrained.").split(".")
    base = _RENAMED.get(parts[0], parts[0])
    if base not in _LIBM:
        return []
    return [base + _SUFFIX[t] for t in parts[1:] if t in _SUFFIX][:1]


def _native_runtime(asm_commands: list[list[str]], link: list[str], work: str,
                    out: str) -> list:
    """libnone.a from musl's `.s` files, crt1.o and libcompiler_rt.a copied from zig's build;
    the index of every native object."""
    objects = []
    for command in asm_commands:
        obj = os.path.join(work, os.path.basename(_source(command)) + ".o")
        proc = subprocess.run(_retargeted(command, obj), env=zig_env(), capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise AllvmError(f"assembling {_source(command)} failed: {proc.stderr.strip()}")
        objects.append(obj)
    libnone = os.path.join(out, ARCHIVES[0])
    proc = subprocess.run([zig_binary(), "ar", "rcs", libnone, *objects], env=zig_env(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AllvmError(f"archiving the native runtime failed: {proc.stderr.strip()}")
    crt1 = next(t for t in link if t.endswith("/crt1.o"))
    compiler_rt = next(t for t in link if t.endswith("/libcompiler_rt.a"))
    shutil.copy(crt1, os.path.join(out, START))
    shutil.copy(compiler_rt, os.path.join(out, ARCHIVES[1]))
    natives = [[START, *_object_symbols(_read(crt1))]]
    natives += [[os.path.basename(o), *_object_symbols(_read(o))] for o in objects]
    return natives + _archive_symbols(compiler_rt, ARCHIVES[1])


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _archive_symbols(path: str, label: str) -> list:
    from allvm.elf import archive_members

    return [[f"{label}({os.path.basename(name)})", *_object_symbols(data)]
            for name, data in archive_members(_read(path), path)]


_SHT_SYMTAB, _STB_GLOBAL, _STB_WEAK = 2, 1, 2


def _object_symbols(data: bytes) -> tuple[list[str], list[str]]:
    """(defined global/weak symbols, strongly undefined symbols) of an ELF object."""
    import struct

    from allvm.elf import Elf

    entry = struct.Struct("<IBBHQQ")
    elf = Elf(data, "object")
    defines, needs = set(), set()
    for s in elf.sections:
        if s.type != _SHT_SYMTAB:
            continue
        strings = elf.raw_sections[s.link]
        for pos in range(s.offset + entry.size, s.offset + s.size, entry.size):
            name_offset, info, _, shndx, _, _ = entry.unpack_from(data, pos)
            bind = info >> 4
            if bind not in (_STB_GLOBAL, _STB_WEAK):
                continue
            start = strings[4] + name_offset
            name = data[start:data.index(b"\0", start)].decode()
            if shndx != 0:
                defines.add(name)
            elif bind == _STB_GLOBAL:
                needs.add(name)
    return sorted(defines), sorted(needs - defines)


def is_platform_ir(module) -> bool:
    """Whether a (main) module carries its libc in IR: linked with the native runtime only."""
    try:
        module.get_global_variable(MARKER)
    except NameError:
        return False
    return True


def reached_functions(module) -> list[str]:
    """The libc functions a platform-IR program can reach, as alltogether recorded them in the
    marker (inlining may have removed their names from the code); [] for other modules."""
    from allvm.ir import unescape

    try:
        text = str(module.get_global_variable(MARKER))
    except NameError:
        return []
    body = re.search(r'c"(.*)"', text)
    names = unescape(body[1]).split(b"\0") if body else []
    return [name.decode() for name in names if name]


def native_runtime() -> tuple[str, list[str]]:
    """The native runtime a program with its libc in IR is linked with: the start file (before
    the program's objects) and the archives (after). Built on first use if missing."""
    root = platform_dir()
    if not os.path.exists(os.path.join(root, INDEX)):
        load(_to_stderr)  # built on first use (make setup builds it)
    return os.path.join(root, START), [os.path.join(root, a) for a in ARCHIVES]


def _to_stderr(message: str) -> None:
    """Progress of a build started by running a program: its stdout is the program's."""
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    """`python -m allvm.platform.libc_ir`: build the platform IR now (make's set-up step)."""
    try:
        platform = load(lambda message: print(message, flush=True))
    except AllvmError as e:
        print(f"allvm: {e}", file=sys.stderr)
        return 1
    print(f"Platform IR: {len(platform.members)} libc members in {platform.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
