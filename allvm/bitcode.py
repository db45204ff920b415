"""A bitcode module's target triple, read from the bitstream without LLVM.

alley and allready refuse a module for another architecture before compiling any module: parsing
every module with LLVM first would cost a good part of compiling it. LLVM's writer (from LLVM 4 to
22) puts the triple among the first records of the module block, after sub-blocks (types,
attributes) that carry their length: this reads up to it and gives up (None) on anything else,
leaving the check to the compiler.
"""

import struct

MAGIC = b"BC\xc0\xde"  # raw bitcode
WRAPPER_MAGIC = b"\xde\xc0\x17\x0b"  # bitcode in LLVM's wrapper header
_MODULE_BLOCK = 8
_TRIPLE_RECORD = 2
_END_BLOCK, _ENTER_SUBBLOCK, _DEFINE_ABBREV, _UNABBREV_RECORD = range(4)
_TOP_LEVEL_WIDTH = 2  # abbreviation id width outside any block


def is_bitcode(data: bytes) -> bool:
    return data[:4] in (MAGIC, WRAPPER_MAGIC)


class _Unreadable(Exception):
    pass


class _Bits:
    """A little-endian bit reader over a bitstream."""

    def __init__(self, data: bytes, position: int):
        self.data = data
        self.position = position  # in bits

    def read(self, width: int) -> int:
        end = self.position + width
        if end > len(self.data) * 8:
            raise _Unreadable
        chunk = int.from_bytes(self.data[self.position >> 3:(end + 7) >> 3], "little")
        value = (chunk >> (self.position & 7)) & ((1 << width) - 1)
        self.position = end
        return value

    def vbr(self, width: int) -> int:
        """A variable-width integer: chunks of width-1 bits, the top bit saying "more"."""
        value, shift = 0, 0
        while True:
            chunk = self.read(width)
            value |= (chunk & ((1 << (width - 1)) - 1)) << shift
            if not chunk >> (width - 1):
                return value
            shift += width - 1
            if shift > 64:
                raise _Unreadable

    def enter_block(self) -> tuple[int, int, int]:
        """After ENTER_SUBBLOCK: the block's id, its abbreviation width, its end (in bits)."""
        block, width = self.vbr(8), self.vbr(4)
        self.position = (self.position + 31) & ~31
        words = self.read(32)
        return block, width, self.position + 32 * words


def bitcode_triple(data: bytes) -> str | None:
    """The module's target triple; None if it has none or this reader cannot find it."""
    try:
        if data[:4] == WRAPPER_MAGIC:
            offset, size = struct.unpack_from("<II", data, 8)
            data = data[offset:offset + size]
        if data[:4] != MAGIC:
            return None
        return _module_triple(_Bits(data, 32))
    except (_Unreadable, struct.error, UnicodeDecodeError):
        return None


def _module_triple(bits: _Bits) -> str | None:
    while True:  # top level: the identification block, then the module block
        if bits.read(_TOP_LEVEL_WIDTH) != _ENTER_SUBBLOCK:
            return None
        block, width, end = bits.enter_block()
        if block == _MODULE_BLOCK:
            break
        bits.position = end
    while True:
        abbreviation = bits.read(width)
        if abbreviation == _ENTER_SUBBLOCK:
            bits.position = bits.enter_block()[2]
        elif abbreviation == _UNABBREV_RECORD:
            code, count = bits.vbr(6), bits.vbr(6)
            if 6 * count > len(bits.data) * 8 - bits.position:
                raise _Unreadable
            operands = [bits.vbr(6) for _ in range(count)]
            if code == _TRIPLE_RECORD:
                return bytes(operands).decode() if max(operands, default=0) < 256 else None
        else:  # the block's end or an abbreviated record: not the layout this reads
            return None
