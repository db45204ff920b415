"""allmux: several allexes become one multicall allexe ("software multiplexing").

The result's `main.bc` is a generated dispatcher. It picks a program by `basename(argv[0])`
(or, busybox-style, by `argv[1]` when argv[0] names none), registers that program's
destructors with `atexit`, runs its constructors — its library modules' first, then its own —
and calls its renamed `main_<name>`. Each program's main module is internalized so that two
programs may define the same names; each distinct library module is kept once. Libraries of
different programs may also define one external name with different code (each program's
`init`): allvm.resolution renames such symbols after the definition each program binds to,
so each program reaches its own (and a library calling one is kept once per binding).

Static constructors cannot stay in `llvm.global_ctors`: every program's would run at start-up.
So each module's ctor/dtor tables are taken apart here, and the functions they list are given
unique external names the dispatcher can call.

Programs also share what their main modules have alike ("software multiplexing shares its
libraries"): programs linked from one code base each carry a copy of the same library code
(coreutils links gnulib into every program). Only one program runs in a process of the mux, so
identical definitions of different programs — functions, constants, even mutable globals — can
be one: each copy gets one shared name as a `linkonce_odr` comdat member, and the linker keeps
one. allvm.sharing decides what is identical; a program's module still holds all its own code.
"""

import os
import re
from dataclasses import dataclass, field
from hashlib import blake2b

from allvm.allexe import MAIN_MODULE, Allexe
from allvm.codegen import DEFAULT_TRIPLE, check_target
from allvm.errors import AllvmError
from allvm.ir import find_function, ir_symbol, parse_module, unescape
from allvm.resolution import Placement, module_symbols, place_modules, rename_symbols
from allvm.sharing import Definition, module_definitions, share_definitions, shared_definitions
from allvm.structors import CTORS, DTORS, disable_tables, export_structors, find_table
from allvm.symbols import internalize
from allvm.toolchain import is_gnu

ALLEXE_SUFFIX = ".allexe"
# In the dispatcher, a string naming each program's modules: `name\tmodule module...\n`, so a
# deny policy can check only the program argv[0] selects (allvm.policy).
MANIFEST = "allmux.manifest"
EXIT_UNKNOWN_PROGRAM = 127  # what a shell returns for a command it cannot find
# What a ctor/dtor or main may take: glibc passes (argc, argv, envp) to constructors too.
_START_ARGS = (("i32", "%argc"), ("ptr", "%argv"), ("ptr", "%envp"))


@dataclass
class Hook:
    """A function the dispatcher calls: a program's main, a constructor or a destructor."""

    symbol: str
    returns: str  # IR return type
    params: list[str]  # IR parameter types, a prefix of (i32, ptr, ptr)
    vararg: bool = False

    @property
    def function_type(self) -> str:
        return f"{self.returns} ({', '.join(self.params + ['...'] * self.vararg)})"

    def call(self) -> str:
        """The call instruction's text, passing the first len(params) of (argc, argv, envp)."""
        args = ", ".join(f"{t} {n}" for t, n in _START_ARGS[: len(self.params)])
        return f"call {self.function_type} {ir_symbol(self.symbol)}({args})"


@dataclass
class MuxedModule:
    """A module of the output allexe, with the (priority, hook) pairs of its ctor/dtor tables."""

    entry_name: str
    bitcode: bytes
    ctors: list[tuple[int, Hook]] = field(default_factory=list)
    dtors: list[tuple[int, Hook]] = field(default_factory=list)


@dataclass
class Program:
    name: str
    main: Hook
    modules: list[MuxedModule]  # its library modules in order, then its own main module

    def hooks(self, kind: str) -> list[Hook]:
        """Constructors (or destructors) in the order a static link would run them: by
        priority, then library modules before the program's own, then table order."""
        entries = [e for m in self.modules for e in (m.ctors if kind == "ctor" else m.dtors)]
        return [hook for _, hook in sorted(entries, key=lambda e: e[0])]


def program_name(path: str) -> str:
    """A program's name in the mux: the allexe's file name without `.allexe`."""
    return os.path.basename(path).removesuffix(ALLEXE_SUFFIX)


def check_program_names(paths: list[str]) -> list[str]:
    names, seen = [], set()
    for path in paths:
        name = program_name(path)
        if not name:
            raise AllvmError(f"'{path}' has no name to dispatch on")
        if name in seen:
            raise AllvmError(f"error: Duplicate basename '{name}' encountered")
        seen.add(name)
        names.append(name)
    return names


@dataclass
class _Input:
    """One program as read: its main module (parsed, `main` renamed, internalized) and its
    library modules' entry names and digests.

    Parsed modules are kept from reading to writing: parsing them again costs more time than
    keeping them costs memory (allmux of nine corpus programs, 9.5 MB of allexes: parsing
    again took 57-64 s and 789 MB, keeping them 35-39 s and 859 MB)."""

    path: str
    name: str
    main: object
    libraries: list[tuple[str, str]]


def mux_allexes(paths: list[str], *, internalize_mains: bool = True) -> list[tuple[str, bytes]]:
    """The modules of the multicall allexe for `paths`: dispatcher first, each library once
    (once per binding of its symbols, allvm.resolution)."""
    names = check_program_names(paths)
    library_code: dict[str, list] = {}  # by digest of the inflated bitcode: [bitcode, module]
    inputs = [_read_program(path, name, internalize_mains, library_code)
              for path, name in zip(paths, names, strict=True)]
    platform = _platform(inputs)
    library_symbols = {digest: module_symbols(code[1]) for digest, code in library_code.items()}
    placements = place_modules([
        [(i, program.name, module_symbols(program.main)),
         *((digest, f"lib.{digest[:16]}", library_symbols[digest])
           for _, digest in program.libraries)]
        for i, program in enumerate(inputs)])
    instances: dict[str, MuxedModule] = {}
    taken = {MAIN_MODULE}
    programs, modules, texts = [], [], []
    for program, placed in zip(inputs, placements, strict=True):
        libs = []
        for (entry_name, digest), placement in zip(program.libraries, placed[1:], strict=True):
            if placement.instance not in instances:
                instances[placement.instance] = _mux_library_module(
                    library_code[digest], placement,
                    _unique_entry_name(entry_name, placement.instance, taken),
                    f"{program.path}: {entry_name}")
                modules.append(instances[placement.instance])
            libs.append(instances[placement.instance])
        own, main, text = _mux_main_module(program, placed[0].renames)
        own.entry_name = _unique_entry_name(own.entry_name, program.name, taken)
        modules.append(own)
        programs.append(Program(program.name, main, [*libs, own]))
        texts.append(text)
    _share_across_programs(programs, texts, [module_definitions(text) for text in texts])
    dispatcher = parse_module(dispatcher_ir(programs, *platform).encode(), MAIN_MODULE)
    return [(MAIN_MODULE, dispatcher.as_bitcode())] + [(m.entry_name, m.bitcode) for m in modules]


def _read_program(path: str, name: str, internalize_main: bool,
                  library_code: dict[str, list]) -> _Input:
    """Read a program's modules, each checked to be for this machine before any is compiled;
    a library module not read before is added to `library_code`."""
    allexe = Allexe.open(path)
    main = _program_main_module(allexe, name, internalize_main)
    libraries = []
    for entry in allexe.modules[1:]:
        bitcode = allexe.read_module(entry)
        digest = blake2b(bitcode, digest_size=20).hexdigest()
        if digest not in library_code:
            module = parse_module(bitcode, f"{path}: {entry.name}")
            check_target(module)
            library_code[digest] = [bitcode, module]
        libraries.append((entry.name, digest))
    return _Input(path, name, main, libraries)


def _platform(inputs: list[_Input]) -> tuple[str, str]:
    """The mux's target triple and data layout: its first program's; all on one platform."""
    first = inputs[0].main
    triple = first.triple or DEFAULT_TRIPLE
    for program in inputs:
        other = program.main.triple or DEFAULT_TRIPLE
        if is_gnu(other) != is_gnu(triple):
            raise AllvmError(f"{program.path}: cannot mux programs for '{triple}' and "
                             f"'{other}'")
    return triple, first.data_layout


def _share_across_programs(programs: list[Program], texts: list[str],
                           definitions: list[list[Definition]]) -> None:
    """Give the definitions programs have alike one shared name each (allvm.sharing): the main
    modules that have any are rewritten from their text, in parallel."""
    from allvm.parallel import in_parallel

    shared = shared_definitions(definitions)
    rewritten = [i for i, found in enumerate(shared) if found]
    jobs = [(texts[i], shared[i], f"{programs[i].name}: {programs[i].modules[-1].entry_name}")
            for i in rewritten]
    for i, bitcode in zip(rewritten, in_parallel(share_definitions, jobs) if jobs else [],
                          strict=True):
        programs[i].modules[-1].bitcode = bitcode


def _unique_entry_name(name: str, tag: str, taken: set[str]) -> str:
    """The entry's own name if free; else one prefixed by `tag` (different modules, same name)."""
    if name in taken:
        name = f"{tag.removeprefix('lib.')}/{name}"
    taken.add(name)
    return name


def _program_main_module(allexe: Allexe, name: str, internalize_main: bool):
    """A program's main module with `main` renamed `main_<name>`, the rest internalized."""
    module = parse_module(allexe.read_module(allexe.main), f"{allexe.path}: {MAIN_MODULE}")
    check_target(module)
    main = find_function(module, "main")
    if main is None or main.is_declaration:
        raise AllvmError(f"{allexe.path}: '{MAIN_MODULE}' does not define 'main'")
    main.name = f"main_{name}"
    main.linkage = "external"
    main.visibility = "default"  # a hidden main must still be callable from the dispatcher
    if internalize_main:
        # Several programs may replace operator new: each keeps its own, for its own code (the
        # C++ runtime's calls reach the runtime's).
        module = internalize(module, keep={main.name}, keep_replacements=False)
    return module


def _mux_main_module(program: _Input, renames: dict[str, str]):
    """The program's main module for the mux, the dispatcher's hook for its main, and the
    module as IR text, for allvm.sharing."""
    module = program.main
    rename_symbols(module, renames)
    hook = _hook(find_function(module, f"main_{program.name}"), f"'main' of {program.path}")
    muxed = MuxedModule(f"main_{program.name}.bc", b"")
    _take_ctor_tables(module, muxed, program.name)
    # A program linked from many source files holds a string constant once per file that
    # uses it: merged (LLVM's constmerge), it has one definition with that content to share.
    _run_passes(module, "constmerge")
    muxed.bitcode = module.as_bitcode()
    # The text allvm.sharing reads starts with the module's name, unescaped: a path's line
    # break there would be misread as the start of a definition.
    module.name = MAIN_MODULE
    return muxed, hook, str(module)


def _mux_library_module(code: list, placement: Placement, entry_name: str,
                        where: str) -> MuxedModule:
    """One instance of a library module (`code`: its bitcode, and its parsed module until an
    instance takes it); rewritten only if symbols are renamed or it has constructors."""
    bitcode, module = code
    code[1] = None
    module = module or parse_module(bitcode, where)
    rename_symbols(module, placement.renames)
    muxed = MuxedModule(entry_name, bitcode)
    if _take_ctor_tables(module, muxed, placement.instance) or placement.renames:
        muxed.bitcode = module.as_bitcode()
    return muxed


def _take_ctor_tables(module, muxed: MuxedModule, tag: str) -> bool:
    """Move the module's ctor/dtor tables into `muxed`; True if the module had any."""
    if find_table(module, CTORS) is None and find_table(module, DTORS) is None:
        return False
    tables = export_structors(module, f"allmux.{tag}")
    for hooks, table in ((muxed.ctors, CTORS), (muxed.dtors, DTORS)):
        hooks += [(priority, _hook(find_function(module, name), f"'{name}' in {module.name}'s "
                                   f"{table}")) for priority, name in tables[table]]
    disable_tables(module)
    _run_passes(module, "globaldce")  # drops the disabled tables (llvmlite cannot delete them)
    return True


def _run_passes(module, pipeline: str) -> None:
    from allvm.passes import run_pipeline  # not on alley's path (allvm.policy imports this)

    run_pipeline(module, pipeline)


def _hook(function, what: str) -> Hook:
    """How the dispatcher calls `function`; it may take a prefix of (argc, argv, envp)."""
    ftype = function.global_value_type
    params = [str(t) for t in ftype.get_function_parameters()]
    if params != [t for t, _ in _START_ARGS[: len(params)]]:
        raise AllvmError(f"{what} has an unsupported signature '{ftype}'")
    return Hook(function.name, str(ftype.get_function_return()), params,
                ftype.is_function_vararg)


def _c_string(text: str) -> tuple[str, int]:
    """An IR `c"..."` literal of `text` with its NUL, and its length in bytes."""
    data = text.encode() + b"\0"
    body = "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:02X}" for b in data)
    return f'c"{body}"', len(data)


def _string_global(name: str, text: str) -> str:
    literal, size = _c_string(text)
    return f"{ir_symbol(name)} = private unnamed_addr constant [{size} x i8] {literal}"


def read_manifest(allexe: Allexe) -> dict[str, list[str]] | None:
    """{program name: its module entry names} of a muxed allexe; None for any other."""
    module = parse_module(allexe.read_module(allexe.main), MAIN_MODULE)
    variable = next((g for g in module.global_variables if g.name == MANIFEST), None)
    literal = re.search(r'c"([^"]*)"', str(variable)) if variable is not None else None
    if literal is None:
        return None
    text = unescape(literal[1]).rstrip(b"\0").decode("utf-8", "replace")
    return {name: modules.split() for name, _, modules in
            (line.partition("\t") for line in text.splitlines())}


def selected_program(programs: dict[str, list[str]], argv0: str, args: list[str]) -> str | None:
    """The program the dispatcher will run: by basename(argv[0]), else busybox-style by the
    first argument; None when it will run none (unknown name)."""
    name = os.path.basename(argv0)
    if name in programs:
        return name
    return args[0] if args and args[0] in programs else None


def dispatcher_ir(programs: list[Program], triple: str, datalayout: str) -> str:
    """The textual IR of the generated `main.bc`."""
    available = " ".join(p.name for p in programs).replace("%", "%%")
    lines = [
        f'target triple = "{triple}"',
        f'target datalayout = "{datalayout}"',
        _string_global("allmux.empty", ""),
        _string_global("allmux.unknown",
                       f"%s: unknown program name; available programs: {available}\n"),
        *(_string_global(f"allmux.name.{i}", p.name) for i, p in enumerate(programs)),
        _string_global(MANIFEST, "".join(
            f"{p.name}\t{' '.join(m.entry_name for m in p.modules)}\n" for p in programs)),
        "declare i32 @strcmp(ptr, ptr)",
        "declare ptr @strrchr(ptr, i32)",
        "declare i32 @atexit(ptr)",
        "declare i32 @dprintf(i32, ptr, ...)",
    ]
    declared = {}
    for program in programs:
        for hook in [program.main, *program.hooks("ctor"), *program.hooks("dtor")]:
            declared[hook.symbol] = hook
    for hook in declared.values():
        params = ", ".join(hook.params + ["..."] * hook.vararg)
        lines.append(f"declare {hook.returns} {ir_symbol(hook.symbol)}({params})")
    lines += [_run_function(i, p) for i, p in enumerate(programs)]
    lines += [_BASENAME, _program_index_function(programs), _main_function(programs)]
    return "\n".join(lines) + "\n"


def _run_function(index: int, program: Program) -> str:
    """Start program `index`: register its destructors, run its constructors, call its main.

    atexit runs handlers last-in first-out, so registering destructors in constructor-like
    order runs them in reverse, as a static link's .fini_array would; registering them before
    the constructors run lets handlers that constructors register run first, as in libc.
    """
    body = [f"  call i32 @atexit(ptr {ir_symbol(h.symbol)})" for h in program.hooks("dtor")]
    body += [f"  {h.call()}" for h in program.hooks("ctor")]
    if program.main.returns == "void":
        body += [f"  {program.main.call()}", "  ret i32 0"]
    else:
        body += [f"  %status = {program.main.call()}", "  ret i32 %status"]
    return "\n".join([f'define internal i32 @"allmux.run.{index}"'
                      "(i32 %argc, ptr %argv, ptr %envp) {", *body, "}"])


# basename(argv[0]); an empty name when argc is 0 and argv[0] is NULL.
_BASENAME = """\
define internal ptr @allmux.basename(ptr %path) {
entry:
  %is_null = icmp eq ptr %path, null
  br i1 %is_null, label %empty, label %search
empty:
  ret ptr @allmux.empty
search:
  %slash = call ptr @strrchr(ptr %path, i32 47)
  %no_slash = icmp eq ptr %slash, null
  %after_slash = getelementptr i8, ptr %slash, i64 1
  %base = select i1 %no_slash, ptr %path, ptr %after_slash
  ret ptr %base
}"""


def _program_index_function(programs: list[Program]) -> str:
    """The index of the program called `name`, or -1."""
    lines = ["define internal i32 @allmux.program_index(ptr %name) {"]
    for i in range(len(programs)):
        lines += [
            f"compare.{i}:",
            f'  %cmp.{i} = call i32 @strcmp(ptr %name, ptr @"allmux.name.{i}")',
            f"  %is.{i} = icmp eq i32 %cmp.{i}, 0",
            f"  br i1 %is.{i}, label %found.{i}, label %compare.{i + 1}",
            f"found.{i}:",
            f"  ret i32 {i}",
        ]
    lines += [f"compare.{len(programs)}:", "  ret i32 -1", "}"]
    return "\n".join(lines)


def _main_function(programs: list[Program]) -> str:
    cases = " ".join(f"i32 {i}, label %run.{i}" for i in range(len(programs)))
    runs = "\n".join(
        f"run.{i}:\n  %status.{i} = call i32 @\"allmux.run.{i}\"(i32 %run_argc, ptr %run_argv,"
        f" ptr %envp)\n  ret i32 %status.{i}" for i in range(len(programs)))
    return f"""\
define i32 @main(i32 %argc, ptr %argv, ptr %envp) {{
entry:
  %argv0 = load ptr, ptr %argv
  %name = call ptr @allmux.basename(ptr %argv0)
  %index = call i32 @allmux.program_index(ptr %name)
  %known = icmp sge i32 %index, 0
  br i1 %known, label %dispatch, label %try_busybox
try_busybox:
  %has_arg = icmp sgt i32 %argc, 1
  br i1 %has_arg, label %busybox, label %unknown
busybox:
  %shifted_argv = getelementptr ptr, ptr %argv, i64 1
  %argv1 = load ptr, ptr %shifted_argv
  %shifted_index = call i32 @allmux.program_index(ptr %argv1)
  %shifted_known = icmp sge i32 %shifted_index, 0
  %shifted_argc = sub i32 %argc, 1
  br i1 %shifted_known, label %dispatch, label %unknown
dispatch:
  %run_index = phi i32 [ %index, %entry ], [ %shifted_index, %busybox ]
  %run_argc = phi i32 [ %argc, %entry ], [ %shifted_argc, %busybox ]
  %run_argv = phi ptr [ %argv, %entry ], [ %shifted_argv, %busybox ]
  switch i32 %run_index, label %unknown [ {cases} ]
{runs}
unknown:
  call i32 (i32, ptr, ...) @dprintf(i32 2, ptr @allmux.unknown, ptr %name)
  ret i32 {EXIT_UNKNOWN_PROGRAM}
}}"""
