"""The allexe container: module/CRC round trip, shebang, validation errors."""

import io
import os
import stat
import zipfile
import zlib

import pytest
from conftest import run_tool

from allvm.allexe import Allexe, alley_path, pack_allexe, write_allexe
from allvm.errors import AllvmError


def test_module_and_crc_round_trip(tmp_path):
    modules = [("main.bc", b"BC\xc0\xde main"), ("/nix/store/x-lib/lib/libA.so.bc", b"lib" * 100)]
    path = tmp_path / "a.allexe"
    write_allexe(str(path), modules, force=False)
    allexe = Allexe.open(str(path))
    assert [m.name for m in allexe.modules] == [name for name, _ in modules]
    for entry, (_, data) in zip(allexe.modules, modules, strict=True):
        assert allexe.read_module(entry) == data
        assert entry.crc_hex == f"{zlib.crc32(data):08X}"


def test_shebang_is_absolute_alley_and_file_is_executable(tmp_path):
    path = tmp_path / "a.allexe"
    write_allexe(str(path), [("main.bc", b"x")], force=False)
    first_line = path.read_bytes().split(b"\n", 1)[0].decode()
    assert first_line == f"#!{alley_path()}"
    assert os.path.isabs(first_line[2:]) and "/usr/bin/env" not in first_line
    assert first_line.endswith("/alley") and os.path.exists(first_line[2:])
    assert path.stat().st_mode & stat.S_IXUSR
    # Any zip reader still reads it: the offsets count from the start of the file.
    assert zipfile.ZipFile(path).testzip() is None


def test_reads_allexe_without_shebang_and_with_prepended_shebang(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("main.bc", b"plain")
    plain = tmp_path / "plain.allexe"
    plain.write_bytes(buf.getvalue())
    assert Allexe.open(str(plain)).read_module(Allexe.open(str(plain)).main) == b"plain"
    # A shebang added in front of an existing zip shifts every offset; still readable.
    shifted = tmp_path / "shifted.allexe"
    shifted.write_bytes(b"#!/some/alley\n" + buf.getvalue())
    allexe = Allexe.open(str(shifted))
    assert allexe.has_shebang and allexe.read_module(allexe.main) == b"plain"


def test_same_modules_give_identical_bytes():
    modules = [("main.bc", b"abc" * 50)]
    assert pack_allexe(modules) == pack_allexe(modules)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x05\x06" + b"\0" * 3])
def test_empty_or_invalid(tmp_path, content):
    path = tmp_path / "bad.allexe"
    path.write_bytes(content)
    with pytest.raises(AllvmError) as e:
        Allexe.open(str(path))
    assert str(e.value) == f"Could not open '{path}': empty or invalid allexe"


def test_first_entry_must_be_main(tmp_path):
    path = tmp_path / "bad.allexe"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("lib.bc", b"x")
        z.writestr("main.bc", b"y")
    proc = run_tool("all-info", path)
    assert proc.returncode == 1
    assert proc.stderr == (f"all-info: Could not open '{path}': First entry was 'lib.bc', "
                           "expected 'main.bc'\n")


def test_corrupt_entry_detected(tmp_path):
    path = tmp_path / "a.allexe"
    write_allexe(str(path), [("main.bc", b"hello world" * 10)], force=False)
    data = bytearray(path.read_bytes())
    start = data.index(b"main.bc") + len("main.bc")  # local header name, then the stored data
    data[start + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    allexe = Allexe.open(str(path))
    with pytest.raises(AllvmError, match="main.bc"):
        allexe.read_module(allexe.main)


def test_writer_refuses_non_main_first_and_duplicates():
    with pytest.raises(AllvmError, match="main.bc"):
        pack_allexe([("lib.bc", b"x")])
    with pytest.raises(AllvmError, match="duplicate module name 'a.bc'"):
        pack_allexe([("main.bc", b"x"), ("a.bc", b"1"), ("a.bc", b"2")])
