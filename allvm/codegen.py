"""Native code: module → object with llvmlite; objects → executable with zig's linker.

The platform is static musl for `*-linux-musl` modules and modules with no triple (ALLVM's
reference platform), the host glibc for `*-linux-gnu`.
"""


from allvm.allexe import MAIN_MODULE
from allvm.bitcode import bitcode_triple
from allvm.imports import module_symbols
from allvm.ir import check_main, ir_symbol, llvm, native_target, parse_module
from allvm.native.settings import OPTIMIZED, CodegenSettings
from allvm.platform import Needs
from allvm.structors import CTORS, DEFAULT_PRIORITY, DTORS, find_table, table_entries
from allvm.toolchain import is_gnu

DEFAULT_TRIPLE = "x86_64-unknown-linux-musl"
_INIT_SECTIONS = {CTORS: ".init_array", DTORS: ".fini_array"}


def structors_to_init_array(module, context):
    """The module with its constructor/destructor tables as `.init_array`/`.fini_array` entries.

    llvmlite's target machine emits them into `.ctors`/`.dtors` (LLVM's default when the
    front end does not ask for init arrays), which musl and glibc never run. Clang puts them
    in `.init_array.<priority>` sections, which the linker sorts by priority; do the same.
    """
    text = None
    for table, section in _INIT_SECTIONS.items():
        variable = find_table(module, table)
        if variable is None:
            continue
        text = text or str(module)
        entries = []
        for index, (priority, function) in enumerate(table_entries(module, table)):
            suffix = "" if priority == DEFAULT_PRIORITY else f".{priority:05d}"
            entries.append(f"@__allvm{section}.{index} = internal constant ptr "
                           f'{ir_symbol(function)}, section "{section}{suffix}", align 8')
        text = text.replace(str(variable).strip(), "\n".join(entries))
    if text is None:
        return module
    return parse_module(text.encode(), module.name, context=context)


def compile_module(bitcode: bytes, name: str,
                   settings: CodegenSettings = OPTIMIZED) -> tuple[bytes, Needs]:
    """One module's native object, and what it needs from the platform (its target triple,
    whether the C++ runtime, whether it carries its libc in IR)."""
    from allvm.platform.libc_ir import is_platform_ir

    # Its own LLVM context: the module, and all it interned, go when the call returns.
    context = llvm().create_context()
    module = structors_to_init_array(parse_module(bitcode, name, context=context), context)
    if name == MAIN_MODULE:
        check_main(module, name)
    triple = module.triple or DEFAULT_TRIPLE
    module.triple = triple
    # musl programs link statically (no PIE); glibc ones as position-independent executables.
    machine = target_machine(triple, name, settings, reloc="pic" if is_gnu(triple) else "static")
    _, declared = module_symbols(module)
    return machine.emit_object(module), Needs.of_module(triple, declared,
                                                        libc_ir=is_platform_ir(module))


def check_bitcode_target(bitcode: bytes, name: str) -> None:
    """check_target from the bitcode alone (allvm.bitcode), before it is parsed or compiled;
    a triple that cannot be read so is checked when the module is compiled."""
    triple = bitcode_triple(bitcode)
    if triple:
        native_target(triple, name)


def check_target(module) -> None:
    """Refuse a module for an architecture this machine does not compile for, naming it and
    its triple: before anything is compiled or written."""
    native_target(module.triple or DEFAULT_TRIPLE, module.name)


def target_machine(triple: str, name: str, settings: CodegenSettings = OPTIMIZED, *,
                   reloc: str = "default", codemodel: str = "default"):
    """A target machine for `triple` with the settings' CPU and optimization level: the one
    place that decides what code is generated (and what their codegen id describes)."""
    return native_target(triple, name).create_target_machine(
        cpu=settings.cpu, opt=settings.opt_level, reloc=reloc, codemodel=codemodel)


