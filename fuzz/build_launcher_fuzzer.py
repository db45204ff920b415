"""Build the libFuzzer target for alley's native launcher (fuzz/fuzz_launcher.c), write its seeds.

    python fuzz/build_launcher_fuzzer.py [OUTPUT] [-seeds DIR]   (or: make fuzz)

The harness #includes allvm/launcher.c and is compiled with the -D definitions the launcher
gets (allvm.launcher.definitions()), with -fsanitize=fuzzer,address,undefined. The bundled
zig's clang is tried first; it carries no libFuzzer/ASan runtime, so Debian's clang-14 (with
libclang-rt-14-dev, installed by `make test`) is what builds it in practice. The seeds are made
here, at run time: real allexes (stored and deflated, with and without a `#!` line, a bare
bitcode file), a launch record and a sealed cache entry.
"""

import io
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile

from allvm import launcher
from allvm.toolchain import zig_command, zig_env

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "fuzz_launcher.c")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(HERE), "build", "fuzz_launcher")
FLAGS = ["-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined", "-g", "-O1",
         "-std=gnu11", "-Wall", "-Wno-unused-function"]


def compilers() -> list[tuple[str, list[str], dict[str, str] | None]]:
    """(name, command, environment) of each compiler to try, in order."""
    found = [("zig cc", zig_command("cc"), zig_env())]
    clang = shutil.which("clang-14")
    if clang:
        found.append(("clang-14", [clang], None))
    return found


def compile_args(output: str) -> list[str]:
    defines = launcher.define_flags()
    return [*FLAGS, *defines, "-DALLVM_FUZZ", '-DALLVM_BUILD_MARK="fuzz"', HARNESS, "-o", output]


def build(output: str = DEFAULT_OUTPUT) -> str:
    """Compile the fuzzer into `output` with the first compiler that can; that compiler's
    name. Raises RuntimeError with every compiler's message when none can."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    failures = []
    for name, command, env in compilers():
        proc = subprocess.run([*command, *compile_args(output)], env=env, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode == 0:
            return name
        failures.append(f"{name}: {(proc.stderr or proc.stdout).strip()[-1500:]}")
    if len(failures) < 2:
        failures.append("clang-14: not found (make test installs clang-14 and "
                        "libclang-rt-14-dev)")
    raise RuntimeError("building the launcher fuzzer failed:\n" + "\n".join(failures))


def _module(index: int) -> bytes:
    from allvm.ir import llvm

    body = ("define i32 @main() {\n  ret i32 0\n}\n" if index == 0 else
            f"define i32 @f{index}(i32 %x) {{\n  %y = add i32 %x, {index}\n  ret i32 %y\n}}\n")
    return llvm().parse_assembly(body).as_bitcode()


def _allexe(count: int, method: int, shebang: bytes = b"", *,
            names: list[str] | None = None) -> bytes:
    buf = io.BytesIO()
    buf.write(shebang)  # offsets counted from the file's start, as bc2allvm writes them
    names = names or ["main.bc"] + [f"lib/m{i}.so.bc" for i in range(1, count)]
    with zipfile.ZipFile(buf, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile's "Duplicate name", made on purpose
        for i, name in enumerate(names):
            z.writestr(zipfile.ZipInfo(name), _module(i), compress_type=method)
    return buf.getvalue()


def seeds() -> dict[str, bytes]:
    """Inputs the parsers accept (and a few near misses), by name."""
    from allvm.allexe import Allexe
    from allvm.cache import seal, static_binary_key

    shebang = b"#!/usr/local/bin/alley\n"
    found = {}
    for count in (1, 3):
        for method, how in ((zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")):
            found[f"allexe-{count}-{how}"] = _allexe(count, method)
            found[f"allexe-{count}-{how}-shebang"] = _allexe(count, method, shebang)
    found["allexe-prefixed"] = shebang + _allexe(2, zipfile.ZIP_STORED)
    # near misses: main.bc second, a duplicate name, an entry over the size limit (no seed
    # over 64 KiB, where the end record's search window starts: inputs that long run 5x slower)
    found["allexe-main-second"] = _allexe(2, zipfile.ZIP_STORED, names=["lib/a.bc", "main.bc"])
    found["allexe-duplicate"] = _allexe(2, zipfile.ZIP_STORED, names=["main.bc", "main.bc"])
    huge = bytearray(_allexe(1, zipfile.ZIP_STORED))
    central = huge.rfind(b"PK\x01\x02")
    huge[central + 24 : central + 28] = (0xFFFFFFFF).to_bytes(4, "little")
    found["allexe-huge"] = bytes(huge)
    found["bitcode"] = _module(0)
    with tempfile.TemporaryDirectory(prefix="allvm-fuzz-seeds-") as directory:
        path = os.path.join(directory, "seed.allexe")
        with open(path, "wb") as f:
            f.write(found["allexe-3-deflated"])
        key = static_binary_key(Allexe.open(path))
    record = f"66306 1234567 4096 1700000000123456789 1700000000987654321 {key} 0 0 0 0 0"
    found["record"] = record.encode()
    found["record-prefixed"] = b"R" + record.replace(" 0 0 0 0 0", " 66306 42 5 6 7").encode()
    found["record-max"] = f"{' '.join(['18446744073709551615'] * 5)} {key} 1 2 3 4 5".encode()
    found["key"] = b"K" + key.encode()
    found["sealed"] = seal(b"\x7fELF" + bytes(60), b"tag")
    found["sealed-empty"] = seal(b"")
    return found


def write_seeds(directory: str) -> None:
    """The seeds into `directory`, beside any corpus there (libFuzzer names its own files by
    their SHA-1, so none is overwritten)."""
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def main() -> None:
    args = sys.argv[1:]
    seed_dir = None
    if "-seeds" in args:
        i = args.index("-seeds")
        seed_dir = args[i + 1]
        del args[i : i + 2]
    output = args[0] if args else DEFAULT_OUTPUT
    try:
        name = build(output)
    except RuntimeError as e:
        sys.exit(str(e))
    print(f"launcher fuzzer: {output} (built with {name})")
    if seed_dir:
        write_seeds(seed_dir)


if __name__ == "__main__":
    main()
