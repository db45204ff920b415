"""Fuzz the allexe container reader and the tools' open path (atheris, coverage-guided).

    python fuzz/fuzz_allexe.py [CORPUS_DIR] -max_total_time=SECONDS   (or: make fuzz)

Each input is taken as an allexe file: opened, every module's stored bytes hashed and its
bitcode inflated, and the cache keys computed — what alley's cache-hit path and all-info do.
The only acceptable failure is an AllvmError (a one-line user error); anything else is a bug.
Seed allexes are written into CORPUS_DIR when it is empty.
"""

import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from allvm.allexe import Allexe, pack_allexe
    from allvm.cache import object_key, static_binary_key
    from allvm.errors import AllvmError

# One file, rewritten for each input: Allexe.open is exercised exactly as the tools call it.
_INPUT = os.path.join(tempfile.mkdtemp(prefix="allvm-fuzz-"), "input.allexe")


def open_path(data: bytes) -> None:
    with open(_INPUT, "wb") as f:
        f.write(data)
    try:
        allexe = Allexe.open(_INPUT)
        static_binary_key(allexe)
        for entry in allexe.modules:
            object_key(allexe, entry)
            allexe.read_module(entry)
    except AllvmError as e:
        assert "\n" not in str(e), repr(str(e))  # one line, always


def write_seeds(corpus: str) -> None:
    """Small valid allexes: one module, several, stored with and without the shebang."""
    os.makedirs(corpus, exist_ok=True)
    if os.listdir(corpus):
        return
    seeds = {
        "one": pack_allexe([("main.bc", b"BC\xc0\xde" + bytes(64))]),
        "three": pack_allexe([("main.bc", b"BC\xc0\xde main"), ("lib/a.bc", b"a" * 300),
                              ("/nix/store/x/lib/libB.so.bc", os.urandom(200))]),
    }
    seeds["no_shebang"] = seeds["three"].split(b"\n", 1)[1]
    for name, data in seeds.items():
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)


def main() -> None:
    corpus = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if corpus:
        write_seeds(corpus)
    atheris.Setup(sys.argv, open_path)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
