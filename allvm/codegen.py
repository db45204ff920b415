"""Native code: module → object with llvmlite; objects → executable with zig's linker.

The platform is static musl for `*-linux-musl` modules and modules with no triple (ALLVM's
reference platform), the host glibc for `*-linux-gnu`.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor

from allvm.cache import CODEGEN_OPT_LEVEL, TARGET_CPU
from allvm.errors import AllvmError
from allvm.ir import llvm, parse_module
from allvm.toolchain import GNU_TARGET, MUSL_TARGET, run_zig

DEFAULT_TRIPLE = "x86_64-unknown-linux-musl"
_UNDEFINED = re.compile(r"undefined symbol: (\S+)")


def is_gnu(triple: str) -> bool:
    """`x86_64-unknown-linux-gnu`, also with versions (`…-linux6.1-gnu2.36`)."""
    return triple.rsplit("-", 1)[-1].startswith("gnu")


def compile_module(bitcode: bytes, name: str) -> tuple[bytes, str]:
    """One module's native object, and the target triple it was compiled for."""
    binding = llvm()
    # Each call gets its own LLVM context so several modules compile at once in threads
    # (llvmlite releases the GIL inside LLVM).
    module = parse_module(bitcode, name, context=binding.create_context())
    triple = module.triple or DEFAULT_TRIPLE
    module.triple = triple
    target = binding.Target.from_triple(triple)
    machine = target.create_target_machine(
        cpu=TARGET_CPU, opt=CODEGEN_OPT_LEVEL, codemodel="default",
        # musl programs link statically (no PIE); glibc ones as position-independent executables.
        reloc="pic" if is_gnu(triple) else "static",
    )
    return machine.emit_object(module), triple


def compile_modules(jobs: list[tuple[bytes, str]]) -> list[tuple[bytes, str]]:
    """Compile several modules, in parallel when there are several."""
    if len(jobs) == 1:
        return [compile_module(*jobs[0])]
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda job: compile_module(*job), jobs))


def _host_glibc() -> str:
    """The host glibc version, so gnu programs link against the libc they will run with."""
    return (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.36").split()[-1]


def link_executable(objects: list[str], triple: str, output: str) -> None:
    """Link objects into an executable: static musl, or dynamic against the host glibc."""
    if is_gnu(triple):
        args = ["-target", f"{GNU_TARGET}.{_host_glibc()}", "-lm"]
    else:
        args = ["-target", MUSL_TARGET, "-static"]
    try:
        run_zig("cc", [*args, "-s", *objects, "-o", output], "linking")
    except AllvmError as e:
        undefined = _UNDEFINED.findall(str(e))
        if undefined:
            more = f" (and {len(set(undefined)) - 1} more)" if len(set(undefined)) > 1 else ""
            raise AllvmError(f"Program used external function '{undefined[0]}' which could "
                             f"not be resolved!{more}") from None
        raise
