"""Just enough ELF and `ar` to find, read and add sections, with `struct` only.

The compiler wrapper adds the `.llvm_bc` section to each object it compiles; extraction reads
that section from executables, shared libraries and archive members, and a shared library
dependency list (DT_NEEDED) with its search path (DT_RUNPATH/DT_RPATH). Only 64-bit
little-endian ELF (x86_64) is handled: that is the only platform allexes target.
"""

import struct

from allvm.errors import AllvmError

_IDENT = b"\x7fELF\x02\x01"  # ELF magic, 64-bit, little-endian
_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_DYN = struct.Struct("<qQ")
_SHT_PROGBITS, _SHT_DYNAMIC = 1, 6
_SHN_LORESERVE, _SHN_XINDEX = 0xFF00, 0xFFFF
DT_NEEDED, DT_RPATH, DT_RUNPATH = 1, 15, 29
AR_MAGIC = b"!<arch>\n"


def is_elf(data: bytes) -> bool:
    return data[:4] == _IDENT[:4]


class Section:
    __slots__ = ("name", "type", "offset", "size", "link")

    def __init__(self, name: str, fields: tuple):
        self.name = name
        self.type, self.offset, self.size, self.link = fields[1], fields[4], fields[5], fields[6]


class Elf:
    """A parsed ELF file held in memory: its header fields and its sections."""

    def __init__(self, data: bytes, path: str):
        if not data.startswith(_IDENT):
            raise AllvmError(f"{path}: not a 64-bit little-endian ELF file")
        self.data = data
        self.path = path
        try:
            self.header = list(_HEADER.unpack_from(data, 0))
            self.raw_sections = self._read_section_headers()
            names = self.raw_sections[self.shstrndx]
            self.sections = [Section(self._string(names, f[0]), f) for f in self.raw_sections]
        except (struct.error, IndexError):
            raise AllvmError(f"{path}: truncated or corrupt ELF file") from None

    @property
    def shstrndx(self) -> int:
        index = self.header[13]
        return self.raw_sections[0][6] if index == _SHN_XINDEX else index

    def _read_section_headers(self) -> list[tuple]:
        shoff, count = self.header[6], self.header[12]
        if shoff == 0:
            return []
        if count == 0:  # extended numbering: the real count is in section 0's size
            count = _SECTION.unpack_from(self.data, shoff)[5]
        return [_SECTION.unpack_from(self.data, shoff + i * _SECTION.size) for i in range(count)]

    def _string(self, table: tuple, offset: int) -> str:
        start = table[4] + offset
        end = self.data.index(b"\0", start)
        return self.data[start:end].decode("utf-8", "replace")

    def section(self, name: str) -> bytes | None:
        """The contents of the first section called `name`, or None."""
        for s in self.sections:
            if s.name == name:
                return self.data[s.offset : s.offset + s.size]
        return None

    def dynamic_entries(self) -> list[tuple[int, str]]:
        """(tag, string) for the string-valued dynamic entries: DT_NEEDED, DT_RPATH, DT_RUNPATH."""
        entries = []
        for s in self.sections:
            if s.type != _SHT_DYNAMIC:
                continue
            strtab = self.raw_sections[s.link]
            for pos in range(s.offset, s.offset + s.size, _DYN.size):
                tag, value = _DYN.unpack_from(self.data, pos)
                if tag == 0:
                    break
                if tag in (DT_NEEDED, DT_RPATH, DT_RUNPATH):
                    entries.append((tag, self._string(strtab, value)))
        return entries

    def with_section(self, name: str, contents: bytes) -> bytes:
        """The file's bytes with one more section (not loaded into memory at run time).

        The contents, a new section-name table and a new section header table are appended;
        nothing already in the file moves, so relocations, groups and symbols stay valid.
        """
        out = bytearray(self.data)
        data_offset = len(out)
        out += contents
        old_names = self.raw_sections[self.shstrndx]
        names_offset = len(out)
        name_index = old_names[5]
        out += self.data[old_names[4] : old_names[4] + old_names[5]] + name.encode() + b"\0"
        out += b"\0" * (-len(out) % 8)
        headers = [list(f) for f in self.raw_sections]
        headers[self.shstrndx][4] = names_offset
        headers[self.shstrndx][5] = name_index + len(name) + 1
        headers.append([name_index, _SHT_PROGBITS, 0, 0, data_offset, len(contents), 0, 0, 1, 0])
        count = len(headers)
        if count >= _SHN_LORESERVE:
            headers[0][5] = count
        header = list(self.header)
        header[6], header[12] = len(out), 0 if count >= _SHN_LORESERVE else count
        for h in headers:
            out += _SECTION.pack(*h)
        _HEADER.pack_into(out, 0, *header)
        return bytes(out)


def archive_members(data: bytes, path: str) -> list[tuple[str, bytes]]:
    """(name, bytes) of each member of a System V / GNU / BSD `ar` archive, symbol tables
    and the long-name table excluded."""
    members, long_names, pos = [], b"", len(AR_MAGIC)
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        if header[58:60] != b"`\n":
            raise AllvmError(f"{path}: corrupt archive member header")
        name, size = header[:16].decode(errors="replace").rstrip(), int(header[48:58])
        body = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name == "//":
            long_names = body
        elif name in ("/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED"):
            continue
        elif name.startswith("#1/"):  # BSD: the name precedes the data
            length = int(name[3:])
            members.append((body[:length].rstrip(b"\0").decode(errors="replace"),
                            body[length:]))
        elif name.startswith("/") and name[1:].isdigit():  # GNU: offset into the name table
            start = int(name[1:])
            members.append((long_names[start : long_names.index(b"/\n", start)].decode(),
                            body))
        else:
            members.append((name.rstrip("/"), body))
    return members
