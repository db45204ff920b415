"""The in-process JIT: a `*-linux-gnu` allexe runs inside alley's own process, on the host glibc.

Each module is compiled to an object by the native pipeline (allvm.native.build, with the
INPROCESS settings; cached in `objects/`), the objects are loaded into MCJIT, and alley then
does what the kernel and glibc's start-up code do for a linked executable: lay out
argv/envp/environ, run the constructors in priority order, call `main`, and `exit()` with its
result so that atexit handlers, destructors and stdio flushing happen exactly as in a native
program.

Constructors and destructors are named in `llvm.global_ctors`/`llvm.global_dtors`, usually as
internal functions that MCJIT cannot look up by name: compiling a module for this path gives
each one a unique external name, and a small generated *support module* calls them in the
order a linker and glibc would. The support module also supplies what a linked executable gets
from crt files and libc_nonshared.a (`__dso_handle`, `atexit`, ...).
"""

import ctypes
import os
import signal
import sys
from typing import NoReturn

from allvm.allexe import Allexe, ModuleEntry
from allvm.cache import Cache
from allvm.codegen import DEFAULT_TRIPLE, inprocess_facts, inprocess_target_machine
from allvm.errors import AllvmError
from allvm.imports import module_symbols
from allvm.ir import llvm, parse_module
from allvm.native.build import Build, cached_tag
from allvm.native.settings import INPROCESS, jit_tier
from allvm.platform import Needs, program_needs, unresolved_error
from allvm.signals import restore_caller_dispositions
from allvm.toolchain import is_gnu

# The host libraries a gnu program is linked against on the exec path (`-lm`, and the compiler
# runtime's helpers, which libgcc_s provides here). Symbols resolve in this order.
HOST_LIBRARIES = ("libc.so.6", "libm.so.6", "libgcc_s.so.1")
_IOFBF, _IOLBF, _BUFSIZ = 0, 1, 8192  # <stdio.h>
_IO_UNBUFFERED = 0x2  # glibc's FILE._flags bit (the first member of FILE)

# What a linked executable gets from crt1/crtbegin and libc_nonshared.a rather than libc.so.
# Defined in the support module only when some module uses them and none defines them.
_SUPPORT_DEFINITIONS = {
    "__dso_handle": "@__dso_handle = global ptr null",  # NULL, as crtbegin.o has it
    "atexit": ("define i32 @atexit(ptr %f) {\n"
               "  %r = call i32 @__cxa_atexit(ptr %f, ptr null, ptr null)\n  ret i32 %r\n}"),
    "at_quick_exit": ("define i32 @at_quick_exit(ptr %f) {\n"
                      "  %r = call i32 @__cxa_at_quick_exit(ptr %f, ptr null)\n  ret i32 %r\n}"),
    "pthread_atfork": ("define i32 @pthread_atfork(ptr %p, ptr %a, ptr %c) {\n"
                       "  %r = call i32 @__register_atfork(ptr %p, ptr %a, ptr %c, ptr null)\n"
                       "  ret i32 %r\n}"),
}
_SUPPORT_DECLARATIONS = ("declare i32 @__cxa_atexit(ptr, ptr, ptr)\n"
                         "declare i32 @__cxa_at_quick_exit(ptr, ptr)\n"
                         "declare i32 @__register_atfork(ptr, ptr, ptr, ptr)\n")


class ModuleCode:
    """One module compiled for the in-process JIT: its object and what linking it needs."""

    def __init__(self, obj: bytes, tag: bytes):
        facts = inprocess_facts(tag)
        self.obj = obj
        self.triple: str = facts["triple"]
        self.ctors: list[tuple[int, str]] = [tuple(c) for c in facts["ctors"]]
        self.dtors: list[tuple[int, str]] = [tuple(d) for d in facts["dtors"]]
        self.defined: set[str] = set(facts["defined"])
        self.undefined: list[str] = facts["undefined"]


def load_modules(allexe: Allexe, cache: Cache) -> list[ModuleCode]:
    """Every module's code, built by the native pipeline with the INPROCESS settings: from
    `objects/` when cached, else compiled (in parallel) and cached."""
    with Build(allexe, cache, cache_objects=True, settings=INPROCESS) as build:
        return [ModuleCode(obj, tag) for obj, tag in build.loaded()]


def _host_libraries() -> list[ctypes.CDLL]:
    libraries = []
    for name in HOST_LIBRARIES:
        try:
            # Global, so that helpers the code generator calls (e.g. __udivti3) resolve too.
            libraries.append(ctypes.CDLL(name, mode=os.RTLD_GLOBAL))
        except OSError:
            continue
    return libraries


def _host_address(libraries: list[ctypes.CDLL], name: str) -> int | None:
    for library in libraries:
        try:
            return ctypes.cast(library[name], ctypes.c_void_p).value
        except AttributeError:
            continue
    return None


def _quoted(name: str) -> str:
    return '@"' + name.replace("\\", "\\5C").replace('"', "\\22") + '"'


def support_module_text(codes: list[ModuleCode], provide: list[str]) -> str:
    """IR for `__allvm.init`: register the destructors with `__cxa_atexit` first (so they run
    after every atexit handler the program registers, as glibc runs `.fini_array` last), then
    call the constructors in priority order, ties in module order, as a linker sorts
    `.init_array.N`. Plus the crt/libc_nonshared definitions in `provide`."""
    ctors = sorted((p, i, j, n) for i, c in enumerate(codes) for j, (p, n) in enumerate(c.ctors))
    dtors = sorted((p, i, j, n) for i, c in enumerate(codes) for j, (p, n) in enumerate(c.dtors))
    names = {n for *_, n in ctors + dtors}
    lines = [_SUPPORT_DECLARATIONS, *(f"declare void {_quoted(n)}()" for n in sorted(names)),
             *(_SUPPORT_DEFINITIONS[name] for name in provide)]
    lines.append("define internal void @__allvm.fini(ptr %unused) {")
    lines += [f"  call void {_quoted(n)}()" for *_, n in reversed(dtors)]
    lines += ["  ret void", "}", "define void @__allvm.init() {"]
    if dtors:
        lines.append("  call i32 @__cxa_atexit(ptr @__allvm.fini, ptr null, ptr null)")
    lines += [f"  call void {_quoted(n)}()" for *_, n in ctors]
    lines += ["  ret void", "}"]
    return "\n".join(lines) + "\n"


class Program:
    """The allexe's code loaded into MCJIT and every symbol resolved; nothing has run yet."""

    def __init__(self, allexe: Allexe, cache: Cache):
        codes = load_modules(allexe, cache)
        triple = codes[0].triple
        self.libc = ctypes.CDLL("libc.so.6")
        provide = self._resolve(codes)
        binding = llvm()
        support = parse_module(support_module_text(codes, provide).encode(), "allvm-support")
        support.triple = triple
        machine = inprocess_target_machine(triple, support.name)
        self.engine = binding.create_mcjit_compiler(support, machine)
        for code in codes:
            self.engine.add_object_file(binding.ObjectFileRef.from_data(code.obj))
        self.engine.finalize_object()
        self.init = self.engine.get_function_address("__allvm.init")
        self.main = self.engine.get_function_address("main")
        if not self.main:
            raise AllvmError("the program has no 'main' function")

    def _resolve(self, codes: list[ModuleCode]) -> list[str]:
        """Bind every external reference to the host glibc, as the exec path's link does, or
        fail before anything runs. Returns the support definitions the program needs."""
        binding = llvm()
        defined = set().union(*(c.defined for c in codes))
        libraries = _host_libraries()
        provide, unresolved = [], []
        for name in dict.fromkeys(n for c in codes for n in c.undefined if n not in defined):
            address = _host_address(libraries, name)
            if address:
                binding.add_symbol(name, address)  # never a same-named symbol of Python's
            elif name in _SUPPORT_DEFINITIONS:
                provide.append(name)
            else:
                unresolved.append(name)
        if unresolved:
            raise unresolved_error(unresolved)
        return provide

    def run(self, argv: list[bytes], environ: dict[bytes, bytes]) -> NoReturn:
        """Run the program as its process's start-up code would, and exit with its status."""
        argc = len(argv)
        env = [key + b"=" + value for key, value in environ.items()]
        # One array, as the kernel lays it out: argv..., NULL, envp..., NULL.
        vector = (ctypes.c_char_p * (argc + len(env) + 2))(*argv, None, *env, None)
        envp = ctypes.addressof(vector) + (argc + 1) * ctypes.sizeof(ctypes.c_char_p)
        ctypes.c_void_p.in_dll(self.libc, "environ").value = envp
        # glibc's start-up code sets these from argv[0] (err(3), error(3) print them).
        name = ctypes.cast(vector, ctypes.POINTER(ctypes.c_void_p))[0]
        short = name + argv[0].rfind(b"/") + 1
        ctypes.c_void_p.in_dll(self.libc, "program_invocation_name").value = name
        ctypes.c_void_p.in_dll(self.libc, "program_invocation_short_name").value = short
        self._reset_process_state()
        ctypes.CFUNCTYPE(None)(self.init)()
        main = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        status = main(self.main)(argc, ctypes.addressof(vector), envp)
        self.libc.exit(status)  # atexit handlers, destructors, stdio flush: glibc's own exit
        raise AssertionError("exit returned")

    def _reset_process_state(self) -> None:
        """Undo what Python changed in its process that a fresh program would not inherit."""
        sys.stdout.flush()
        sys.stderr.flush()
        # A program starts with its caller's dispositions: Python took over SIGPIPE and
        # SIGXFSZ, and catches SIGINT (a SIGINT the caller ignored stays ignored, as across
        # exec).
        restore_caller_dispositions()
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        # Python sets LC_CTYPE from the environment; C programs start in the "C" locale.
        self.libc.setlocale(6, b"C")  # LC_ALL
        self._restore_stdio_buffering()

    def _restore_stdio_buffering(self) -> None:
        """Python unbuffers C stdio under PYTHONUNBUFFERED / -u. Give stdin and stdout glibc's
        defaults back: line buffering on a terminal, else full, sized as glibc sizes them."""
        self.libc.malloc.restype = ctypes.c_void_p
        for fd, name in ((0, "stdin"), (1, "stdout")):
            stream = ctypes.c_void_p.in_dll(self.libc, name)
            if not ctypes.c_int.from_address(stream.value).value & _IO_UNBUFFERED:
                continue  # untouched: glibc picks its default on first use
            try:
                size = os.fstat(fd).st_blksize or _BUFSIZ
            except OSError:
                size = _BUFSIZ
            mode = _IOLBF if os.isatty(fd) else _IOFBF
            # A buffer of our own: with none, glibc would keep the 1-byte unbuffered one.
            buffer = ctypes.c_void_p(self.libc.malloc(size))
            self.libc.setvbuf(stream, buffer, mode, ctypes.c_size_t(size))


def _module_needs(allexe: Allexe, cache: Cache, entry: ModuleEntry) -> Needs:
    """What one module needs from the platform: from a cached object of it when there is one
    (no compiler needed), else from the module itself."""
    tag = cached_tag(allexe, entry, cache, INPROCESS)
    if tag is not None:
        facts = inprocess_facts(tag)
        return Needs.of_module(facts["triple"], facts["undefined"])
    tag = cached_tag(allexe, entry, cache, jit_tier())  # the exec path's
    if tag is not None:
        return Needs.from_tag(tag)
    module = parse_module(allexe.read_module(entry), entry.name)
    return Needs.of_module(module.triple or DEFAULT_TRIPLE, module_symbols(module)[1])


def runs_inprocess(allexe: Allexe, cache: Cache) -> bool:
    """Whether `-jit=inprocess` can run this allexe in-process: gnu allexes (a musl allexe's
    platform is static musl, not this process's glibc) that do not need the C++ runtime. zig
    builds libc++ for static links only (its symbols hidden), so it cannot be loaded into this
    process: such programs take the exec path, which links it."""
    main = _module_needs(allexe, cache, allexe.main)
    return is_gnu(main.triple) and not program_needs(
        [main, *(_module_needs(allexe, cache, e) for e in allexe.modules[1:])]).cxx


def run_inprocess(allexe: Allexe, argv: list[str], environ: dict[bytes, bytes], *,
                  noexec: bool = False) -> None:
    """Load, compile and resolve the allexe in this process; then run it with `argv` (never
    returns) unless `noexec`."""
    program = Program(allexe, Cache())
    if noexec:
        print("'noexec' option set")
        return
    program.run([os.fsencode(a) for a in argv], environ)
