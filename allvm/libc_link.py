"""`alltogether -platform-ir`: a program linked with the libc members it uses, as IR, and
optimized as one whole program (qsort specialized for the program's comparator, getc inlined
into the program's loop).

Members are selected as an archive would select them: only a strong undefined reference pulls a
member (musl's weak dummies depend on it), to a fixpoint, over the native runtime too (crt1.o
needs __libc_start_main). Optimization can create calls the program never made (printf →
puts) and code generation lowers intrinsics to libc calls (llvm.acos.f80 → acosl): such
functions must be in the program and stay visible to the linker, so when optimization asks for
one that is not, the link is redone with it kept, until nothing new is asked for. Nothing is
ever linked twice: one heap, one stdout.
"""

from collections.abc import Callable

from allvm.errors import AllvmError
from allvm.ir import ir_symbol, parse_module
from allvm.link import WHOLE_PROGRAM_PIPELINE
from allvm.platform.libc_ir import MARKER, START, PlatformIR, module_references
from allvm.symbols import ENTRY_POINT, internalize

# Calls the optimizer derives from the program's own (LLVM's library-call simplification):
# selected with their source, so that one optimization round is usually enough.
DERIVED_CALLS = {
    "printf": ("puts", "putchar"),
    "fprintf": ("fputc", "fputs", "fwrite"),
    "fputs": ("fwrite",),
    "puts": ("putchar",),
    "sprintf": ("strcpy", "stpcpy"),
    "snprintf": ("strcpy",),
    "pow": ("exp2", "sqrt"),
    "powf": ("exp2f", "sqrtf"),
}
# A link redone more often than this means the optimizer keeps asking for new functions.
MAX_ROUNDS = 4


def link_with_libc(program, platform: PlatformIR, *, optimize: bool = True,
                   progress: Callable[[str], None] = lambda message: None):
    """The program (all its modules linked into one, nothing internalized) with its libc in IR,
    internalized and optimized; marked as needing the native runtime only."""
    from allvm.toolchain import is_gnu

    if program.triple and is_gnu(program.triple):
        raise AllvmError(f"-platform-ir: the platform IR is static musl's, and this program "
                         f"targets glibc ('{program.triple}')")
    kept: set[str] = set()  # libc functions the optimizer or code generation calls
    for _ in range(MAX_ROUNDS):
        module = program.clone()
        members, native_needs = select_members(platform, module, kept)
        progress(f"  {len(members)} libc members")
        for name in members:
            with open(platform.member_path(name), "rb") as f:
                member = parse_module(f.read(), name)
            member.triple = module.triple or member.triple
            module.link_in(member)
        defined = set().union(*(platform.members[m][0] for m in members))
        # Linked, the module needs from libc only what its intrinsics become (acosl); that and
        # what the native runtime calls (__libc_start_main) are called from outside the IR.
        _, needs = module_references(module)
        visible = defined & (native_needs | needs)
        module = internalize(module, keep={ENTRY_POINT, *kept, *visible})
        reached = _reached(module, defined)
        _mark(module, reached)
        if optimize:
            from allvm.passes import run_pipeline

            run_pipeline(module, WHOLE_PROGRAM_PIPELINE)
        exported, needs = module_references(module)
        # (What the native runtime defines, like fma in compiler_rt, it provides as it is.)
        wanted = {n for n in needs - exported
                  if n in platform.member_of and n not in platform.native_of} - kept
        if not wanted:
            module.verify()
            return module
        progress(f"  optimization called {', '.join(sorted(wanted))}: linking again")
        kept |= wanted
    raise AllvmError("linking libc as IR did not settle: optimization keeps creating calls")


def select_members(platform: PlatformIR, module, kept: set[str]) -> tuple[list[str], set[str]]:
    """The libc members the module pulls in, in the platform's order, and the symbols the
    native runtime objects that get linked need (they must stay visible)."""
    defined, needs = module_references(module)
    roots = set(needs) | kept
    for source, derived in DERIVED_CALLS.items():
        if source in needs:
            roots.update(derived)
    # Two archives, searched in link order: the libc members, then the native runtime.
    archives = [(platform.member_of, platform.members, set()),
                (platform.native_of, platform.natives, {START})]
    defined |= platform.natives[START][0]
    pending = [*roots, *platform.natives[START][1]]
    while pending:
        symbol = pending.pop()
        if symbol in defined:
            continue
        for provider, contents, chosen in archives:
            name = provider.get(symbol)
            if name is not None:
                chosen.add(name)
                provides, wants = contents[name]
                defined |= provides
                pending += wants
                break
    chosen, natives = archives[0][2], archives[1][2]
    native_needs = set().union(*(platform.natives[n][1] for n in natives))
    return [m for m in platform.members if m in chosen], native_needs


def _reached(module, libc_defined: set[str]) -> list[str]:
    """The libc functions the program can reach: what is left of libc once everything the
    program cannot reach is dropped (the deny policy checks these, as inlining may remove
    their names)."""
    from allvm.passes import run_pipeline

    run_pipeline(module, "globaldce")
    return sorted(f.name for f in module.functions
                  if not f.is_declaration and f.name in libc_defined)


def _mark(module, reached: list[str]) -> None:
    """Define the marker: a constant naming the libc functions the program reaches."""
    data = b"".join(name.encode() + b"\0" for name in reached) + b"\0"
    body = "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\{b:02X}" for b in data)
    text = (f'target triple = "{module.triple}"\ntarget datalayout = "{module.data_layout}"\n'
            f'{ir_symbol(MARKER)} = constant [{len(data)} x i8] c"{body}"\n')
    module.link_in(parse_module(text.encode(), "platform marker"))
