"""Loading, parsing and verifying LLVM modules (bitcode or textual IR, old or new)."""

import contextlib
import os
import re
import threading

from allvm.bitcode import is_bitcode
from allvm.errors import AllvmError

_llvm = None
_FD2_LOCK = threading.Lock()
# The warning LLVM prints after reporting (and before stripping) invalid debug info.
_IGNORED_DEBUG_INFO = "ignoring invalid debug info"


def llvm():
    """llvmlite's binding, initialized once (importing it is slow: only paths that compile pay)."""
    global _llvm
    if _llvm is None:
        import llvmlite.binding as binding

        binding.initialize_native_target()
        binding.initialize_native_asmprinter()
        binding.initialize_native_asmparser()
        _llvm = binding
    return _llvm


def looks_like_ir(data: bytes) -> bool:
    """Bitcode, or text that could be LLVM assembly (not a zip, not an ELF, not binary)."""
    if is_bitcode(data):
        return True
    head = data[:4096]
    return b"\0" not in head and not head.startswith((b"PK", b"#!", b"\x7fELF"))


@contextlib.contextmanager
def _quiet_llvm_diagnostics():
    """Catch what LLVM prints on fd 2 while reading a module, and drop its debug-info noise.

    Reading bitcode from older compilers (LLVM 4-era allexes) or IR with invalid debug info,
    LLVM runs its verifier over the debug info, prints every complaint with a dump of the
    metadata, then warns that it is "ignoring invalid debug info" and strips it. None of that
    is the user's concern; anything else LLVM says is passed on.
    """
    # fd 2 belongs to the whole process: two threads doing this at once would each save the
    # other's sink as "stderr" and leave fd 2 pointing at it for the program.
    with _FD2_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # stderr is closed: LLVM must not write into whatever opens as fd 2
            saved = None
        sink = os.memfd_create("allvm-llvm-diagnostics")
        if sink != 2:
            os.dup2(sink, 2)
        try:
            yield
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            elif sink != 2:
                os.close(2)
            with open(sink, "rb") as captured:  # closes the sink
                text = captured.read().decode(errors="replace")
            if saved is not None:
                for line in _without_debug_info_noise(text.splitlines()):
                    os.write(2, (line + "\n").encode())


def _without_debug_info_noise(lines: list[str]) -> list[str]:
    """The lines but the debug-info verifier's report: its complaints and metadata dumps come
    before the warning that ends it, so everything up to the last such warning goes."""
    ends = [i for i, line in enumerate(lines) if _IGNORED_DEBUG_INFO in line]
    rest = lines[ends[-1] + 1:] if ends else lines
    return [line for line in rest if line.strip() and "debug info" not in line]


def parse_module(data: bytes, name: str, context=None):
    """A verified llvmlite ModuleRef from bitcode or textual IR; errors name the module.

    Modules parsed in one thread share LLVM's global context; code that works on modules in
    several threads at once passes each its own `context`.
    """
    binding = llvm()
    try:
        with _quiet_llvm_diagnostics():
            if is_bitcode(data):
                module = binding.parse_bitcode(data, context=context)
            else:
                module = binding.parse_assembly(data.decode("utf-8", "replace"), context=context)
            module.verify()
    except RuntimeError as e:
        message = " ".join(str(e).split())
        raise AllvmError(f"{name}: invalid module: {message}") from None
    module.name = name
    return module


def read_module_file(path: str):
    """Parse an IR file from disk (`.bc` or `.ll`); refuses files that are not IR."""
    from allvm.allexe import read_regular_file

    try:
        data = read_regular_file(path)
    except OSError as e:
        raise AllvmError(f"Could not open {path}: {e.strerror}") from None
    if not data or not looks_like_ir(data):
        raise AllvmError(f"Could not open {path}: not LLVM bitcode or textual IR")
    return parse_module(data, path)


def find_function(module, name: str):
    """The function `name` if the module has it (declared or defined), else None."""
    try:
        return module.get_function(name)
    except NameError:
        return None


def check_main(module, path: str) -> None:
    """The program's module must define the function `main` (not declare it, not a variable)."""
    main = find_function(module, "main")
    if main is None:
        raise AllvmError(f"Failed to find 'main' function in {path}!")
    if main.is_declaration:
        raise AllvmError("'main' must not be a declaration in first module")


def native_target(triple: str, name: str):
    """LLVM's target for a module's triple; only this machine's architecture is compiled."""
    try:
        return llvm().Target.from_triple(triple)
    except RuntimeError:
        raise AllvmError(f"{name}: target '{triple}' is not supported on this machine") from None


def ir_symbol(name: str) -> str:
    """A global's name as IR text: always quoted, with LLVM's \\XX escapes."""
    return '@"' + "".join(c if c.isprintable() and c not in '"\\' else
                          "".join(f"\\{b:02X}" for b in c.encode()) for c in name) + '"'


def symbol_name(ref: str) -> str:
    """`@f` or `@"a \\22quoted\\22 name"` as printed in IR → the symbol's name."""
    if not ref.startswith('@"'):
        return ref[1:]
    return unescape(ref[2:-1]).decode("utf-8", "replace")


def unescape(text: str) -> bytes:
    """The bytes of a quoted IR name or `c"..."` string body (LLVM escapes as `\\XX`)."""
    return re.sub(rb"\\([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), text.encode())
