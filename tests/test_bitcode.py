"""Reading a bitcode module's triple without LLVM (allvm.bitcode), against LLVM's own reading."""

import random

from conftest import compile_c

from allvm.bitcode import bitcode_triple
from allvm.ir import parse_module

SOURCE = "int answer(void) { return 42; }\n"


def test_triples_as_llvm_reads_them(tmp_path):
    for target in ("x86_64-linux-musl", "x86_64-linux-gnu", "aarch64-linux-musl"):
        bitcode = compile_c(SOURCE, tmp_path / f"{target}.bc", target=target).read_bytes()
        triple = bitcode_triple(bitcode)
        assert triple == parse_module(bitcode, target).triple
        assert triple.startswith(target.split("-")[0])


def test_no_triple_or_no_bitcode_is_none(tmp_path):
    assert bitcode_triple(parse_module(b"define i32 @f() {\n  ret i32 0\n}\n", "t").as_bitcode()) \
        is None
    assert bitcode_triple(b"") is None and bitcode_triple(b"BC\xc0\xde") is None
    bitcode = compile_c(SOURCE, tmp_path / "m.bc").read_bytes()
    rng = random.Random(13)
    for _ in range(500):  # damaged: a triple or None, never an exception or a hang
        damaged = bytearray(bitcode[: rng.randrange(len(bitcode))])
        for _ in range(3):
            if damaged:
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        assert isinstance(bitcode_triple(bytes(damaged)), str | None)
