"""Code-generation settings: everything that changes the native code made from the same IR.

The cache keys every entry on the settings' codegen id (allvm/cache.py), so code made with
other settings is never reused. Two tiers:
- OPTIMIZED: what static binaries are made with (allready, -force-static, the cluster, the
  background promotion) and what the JIT path used to make: LLVM's default code generation at
  O2 for the baseline x86-64 CPU.
- FAST: a program's first run on the JIT path: O0 code generation (FastISel, no scheduling or
  register-allocation search), about a third of O2's time; its objects are cached under their
  own key, and the optimized static binary is built in the background (allvm.native.promote).
And one set that is not a tier of the JIT path: INPROCESS, objects the in-process JIT
(`-jit=inprocess`) loads into alley's own process (allvm.codegen says how they differ).

`$ALLVM_TIER` chooses the JIT path's tier: `fast` (the default) or `optimized` (the JIT path
as before: optimized objects, nothing built in the background).

Imports nothing heavy: alley's cache-hit path computes keys with it.
"""

import os

from allvm import LLVM_VERSION, __version__

# Bump when the cache's layout changes (allvm/cache.py).
CACHE_FORMAT = 2
ZIG_VERSION = "0.17.1"
TIER_VARIABLE = "ALLVM_TIER"


class CodegenSettings:
    """What changes the code for the same IR: target CPU, LLVM's optimization level, tier, and
    the profile of real runs it is optimized with (allvm.native.profile; its identity, or "")."""

    __slots__ = ("cpu", "opt_level", "tier", "profile")

    def __init__(self, *, cpu: str, opt_level: int, tier: str, profile: str = ""):
        self.cpu, self.opt_level, self.tier, self.profile = cpu, opt_level, tier, profile

    @property
    def codegen_id(self) -> str:
        """The cache's name for these settings and this toolchain (versions included)."""
        base = (f"allvm-py {__version__}; cache format {CACHE_FORMAT}; LLVM {LLVM_VERSION}; "
                f"zig {ZIG_VERSION}; cpu {self.cpu}; O{self.opt_level}")
        if self.tier != "optimized":
            base = f"{base}; tier {self.tier}"
        return f"{base}; profile {self.profile}" if self.profile else base

    def with_profile(self, identity: str) -> "CodegenSettings":
        """These settings, optimized with the profile `identity`."""
        return CodegenSettings(cpu=self.cpu, opt_level=self.opt_level, tier=self.tier,
                               profile=identity)

    def __repr__(self) -> str:
        return f"CodegenSettings({self.codegen_id!r})"


OPTIMIZED = CodegenSettings(cpu="x86-64", opt_level=2, tier="optimized")
FAST = CodegenSettings(cpu="x86-64", opt_level=0, tier="fast")
TIERS = {"fast": FAST, "optimized": OPTIMIZED}
INPROCESS = CodegenSettings(cpu="x86-64", opt_level=2, tier="inprocess")


def jit_tier() -> CodegenSettings:
    """The JIT path's tier: `$ALLVM_TIER` (fast or optimized), fast by default."""
    return TIERS.get(os.environ.get(TIER_VARIABLE, ""), FAST)
