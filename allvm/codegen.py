"""Native code: module → object with llvmlite (the objects allvm.native's build links).

The platform is static musl for `*-linux-musl` modules and modules with no triple (ALLVM's
reference platform), the host glibc for `*-linux-gnu`.

Objects come in two forms, chosen by the settings (allvm.native.settings):
- for an executable (every tier): constructors in init arrays, what the link needs from the
  platform in the object's tag (allvm.platform.Needs);
- for the in-process JIT (INPROCESS): position-independent with the small code model, the
  constructors and destructors exported by name (MCJIT cannot run init arrays: allvm.jit calls
  them), and the module's link facts in the tag (inprocess_facts).
"""

import json
import zlib

from allvm.allexe import MAIN_MODULE
from allvm.bitcode import bitcode_triple
from allvm.imports import module_symbols
from allvm.ir import check_main, ir_symbol, llvm, native_target, parse_module
from allvm.native.settings import INPROCESS, OPTIMIZED, CodegenSettings
from allvm.native.tuning import tuned
from allvm.platform import Needs
from allvm.structors import CTORS, DEFAULT_PRIORITY, DTORS, disable_tables, export_structors
from allvm.toolchain import is_gnu

DEFAULT_TRIPLE = "x86_64-unknown-linux-musl"
_INIT_SECTIONS = {CTORS: ".init_array", DTORS: ".fini_array"}


def structors_to_init_array(module, context, prefix: str) -> None:
    """Put the module's constructor/destructor tables into `.init_array`/`.fini_array`.

    llvmlite's target machine emits `llvm.global_ctors` into `.ctors`/`.dtors` (LLVM's default
    when the front end does not ask for init arrays), which musl and glibc never run. Clang
    puts them in `.init_array.<priority>` sections, which the linker sorts by priority; do the
    same: each function listed gets an entry of its own in a small module linked in (a local
    function is exported first under the unique name `<prefix>.<n>`, so that module can name
    it), and the tables are disabled. Built, not printed: the program's module is never
    turned into text and parsed again.
    """
    tables = export_structors(module, prefix)
    if not any(tables.values()):
        return
    lines, names, declared = [], [], set()
    for table, section in _INIT_SECTIONS.items():
        for priority, function in tables[table]:
            if function not in declared:
                declared.add(function)
                lines.append(f"declare void {ir_symbol(function)}()")
            suffix = "" if priority == DEFAULT_PRIORITY else f".{priority:05d}"
            names.append(f"@__allvm{section}.{len(names)}")
            lines.append(f"{names[-1]} = internal constant ptr {ir_symbol(function)}, "
                         f'section "{section}{suffix}", align 8')
    # The linker moves a local only when something uses it: llvm.compiler.used does.
    used = ", ".join(f"ptr {name}" for name in names)
    lines.append(f"@llvm.compiler.used = appending global [{len(names)} x ptr] [{used}], "
                 'section "llvm.metadata"')
    sections = parse_module("\n".join(lines).encode(), f"{module.name} (init arrays)",
                            context=context)
    sections.triple, sections.data_layout = module.triple, module.data_layout
    disable_tables(module)
    module.link_in(sections)


def compile_object(bitcode: bytes, name: str,
                   settings: CodegenSettings = OPTIMIZED) -> tuple[bytes, bytes]:
    """One module's object in the settings' form, and the tag the cache stores with it: the
    one compile step of every path (a local build, a cluster worker, the in-process JIT)."""
    if settings.tier == INPROCESS.tier:
        return _compile_for_inprocess(bitcode, name, settings)
    obj, needs = compile_module(bitcode, name, settings)
    return obj, needs.tag()


def compile_module(bitcode: bytes, name: str,
                   settings: CodegenSettings = OPTIMIZED) -> tuple[bytes, Needs]:
    """One module's native object, and what it needs from the platform (its target triple,
    which C++ runtime, whether it carries its libc in IR)."""
    from allvm.platform.cxx import object_dependent_libraries
    from allvm.platform.libc_ir import is_platform_ir

    # Its own LLVM context: the module, and all it interned, go when the call returns.
    context = llvm().create_context()
    module = tuned(parse_module(bitcode, name, context=context), context, settings)
    structors_to_init_array(module, context, f"__allvm.init.{_unique(name, bitcode)}")
    if name == MAIN_MODULE:
        check_main(module, name)
    triple = module.triple or DEFAULT_TRIPLE
    module.triple = triple
    # musl programs link statically (no PIE); glibc ones as position-independent executables.
    machine = target_machine(triple, name, settings, reloc="pic" if is_gnu(triple) else "static")
    _, declared = module_symbols(module)
    obj = emit_object(machine, module)
    # The dependent libraries are read back from the object (`.deplibs`): llvmlite gives no
    # access to the module's named metadata short of printing the whole module.
    return obj, Needs.of_module(triple, declared, libc_ir=is_platform_ir(module),
                                dependent_libraries=object_dependent_libraries(obj))


def _compile_for_inprocess(bitcode: bytes, name: str,
                           settings: CodegenSettings) -> tuple[bytes, bytes]:
    """An object for the in-process JIT, and its link facts (see inprocess_facts) as its tag."""
    module = parse_module(bitcode, name, context=llvm().create_context())
    triple = module.triple = module.triple or DEFAULT_TRIPLE
    tables = export_structors(module, f"__allvm.{_unique(name, bitcode)}")
    defined, undefined = map(sorted, module_symbols(module))
    facts = {"triple": triple, "ctors": tables[CTORS], "dtors": tables[DTORS],
             "defined": defined, "undefined": undefined}
    obj = emit_object(inprocess_target_machine(triple, name, settings), module)
    return obj, zlib.compress(json.dumps(facts).encode())


def inprocess_facts(tag: bytes) -> dict:
    """What loading an in-process object needs, from its tag: its triple, its constructors and
    destructors as (priority, exported name), the names it defines and those it leaves
    undefined."""
    return json.loads(zlib.decompress(tag))


def inprocess_target_machine(triple: str, name: str, settings: CodegenSettings = INPROCESS):
    """The in-process JIT's target machine. Position-independent code: the JIT's memory may be
    far from glibc, so external data is reached through the GOT and external calls through
    stubs, never 32-bit displacements."""
    return target_machine(triple, name, settings, reloc="pic", codemodel="small")


def emit_object(machine, module) -> bytes:
    """The module's object, without debug information or local names.

    Every link strips them (`-s`) and MCJIT never reads them, and generating DWARF is most of
    the code generator's time on a module compiled with -g (bench figure 11: sqlite3's at O0,
    6.4 s → 2.2 s). LLVM generates the same code with or without debug information, so a
    program linked from these objects is byte for byte the one linked from objects with it
    (tests/test_tiers.py): the codegen id stays, and objects cached before remain good."""
    binding = llvm()
    manager = binding.create_new_module_pass_manager()
    manager.add_strip_symbols_pass()
    manager.run(module, binding.create_pass_builder(
        machine, binding.create_pipeline_tuning_options()))
    return machine.emit_object(module)


def _unique(name: str, bitcode: bytes) -> str:
    """A module's own prefix for the names it exports: unique among an allexe's modules."""
    from _blake2 import blake2b

    return blake2b(name.encode() + b"\0" + bitcode, digest_size=8).hexdigest()


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
        cpu=settings.cpu, features=settings.features, opt=settings.opt_level, reloc=reloc,
        codemodel=codemodel)


