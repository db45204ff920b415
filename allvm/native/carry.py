"""Static binaries carry their IR: the allexe a binary was built from, byte for byte, in its
ELF section `.allvm.allexe`.

As the original ALLVM linked the kernel's own IR into the kernel: a binary copied to another
machine (out of a cache, out of an image) still holds its program in IR there, so it can be
turned back into its allexe (`bc2allvm -from-binary`) and rebuilt for that machine; `all-info
BINARY` lists its modules. The section is not loaded at run time (no SHF_ALLOC): it costs disk,
not memory. `$ALLVM_CARRY_IR=0` leaves it out where size matters (allvm.native.settings; the
binary's key names the choice).

The section is added after the link, as `objcopy --add-section` would (allvm.elf): nothing
already in the binary moves. The allexe carried is the file the binary was built from; another
allexe with the same modules (the same key) gets the same binary, so what is recovered is the
program, byte for byte the allexe that first built it.
"""

from allvm.allexe import Allexe, read_input
from allvm.elf import Elf, is_elf
from allvm.errors import AllvmError
from allvm.native.settings import CodegenSettings

SECTION = ".allvm.allexe"


def carried(binary: bytes, allexe: Allexe, settings: CodegenSettings) -> bytes:
    """The static binary linked from `allexe`, as the cache stores it with `settings`: with
    the allexe in its SECTION, unless the settings leave it out."""
    if not settings.carry_ir:
        return binary
    return Elf(binary, f"the static binary of '{allexe.path}'").with_section(SECTION,
                                                                              allexe.data)


def carried_allexe(data: bytes, path: str) -> bytes | None:
    """The allexe bytes the ELF file `data` carries, or None when it carries none (built with
    `$ALLVM_CARRY_IR=0`, or no static binary of ALLVM's at all). Not an ELF file: an error."""
    if not is_elf(data):
        raise AllvmError(f"'{path}' is not an ELF executable")
    return Elf(data, path).section(SECTION)


def read_carried(path: str) -> bytes:
    """The allexe the binary at `path` carries; one clear error when it carries none."""
    return _carried_or_error(read_input(path), path)


def open_allexe_or_binary(path: str) -> Allexe:
    """The allexe at `path`, or the one carried by the static binary at `path`."""
    data = read_input(path)
    return Allexe.from_bytes(path, _carried_or_error(data, path) if is_elf(data) else data)


def _carried_or_error(data: bytes, path: str) -> bytes:
    carried = carried_allexe(data, path)
    if carried is None:
        raise AllvmError(f"'{path}' carries no allexe (no {SECTION} section: not a static "
                         "binary of allready's, or built with ALLVM_CARRY_IR=0)")
    return carried
