"""allvm-py: ALLVM in Python. All software shipped and kept as LLVM IR in allexes."""

__version__ = "0.1.0"

# The LLVM that llvmlite embeds; tests/test_versions.py checks it against llvmlite itself.
# Kept as a constant so the alley cache-hit path can key on it without importing llvmlite.
LLVM_VERSION = "22.1.0"
