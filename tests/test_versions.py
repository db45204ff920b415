"""The pinned toolchain is the one the code assumes."""

import subprocess

from allvm import LLVM_VERSION
from allvm.ir import llvm
from allvm.toolchain import zig_command, zig_env


def test_llvm_version_constant_matches_llvmlite():
    assert LLVM_VERSION == ".".join(map(str, llvm().llvm_version_info))


def test_bundled_clang_is_the_same_llvm_major_minor():
    out = subprocess.run(zig_command("cc", "--version"), env=zig_env(), capture_output=True,
                         text=True, check=True).stdout
    assert f"clang version {LLVM_VERSION.rsplit('.', 1)[0]}." in out
