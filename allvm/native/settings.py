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

Static binaries are made with static_settings(): OPTIMIZED, unless
- `$ALLVM_CPU=native` (or `allready -mcpu=native`): tuned for this machine's CPU, keyed by its
  concrete name and features as LLVM sees them (never the word "native"), so code for one CPU
  is never run on another. Off by default: a binary that leaves the machine (a copied cache,
  the system cache of an image) must run on any x86-64.
- `$ALLVM_CARRY_IR=0`: the binary does not carry its allexe (allvm.native.carry) where size
  matters. Either changes the binary, so either is in the codegen id; and either sends alley's
  starts through the Python alley (the launcher knows the default settings' key only).

Imports nothing heavy: alley's cache-hit path computes keys with it (llvmlite only when
`$ALLVM_CPU=native` asks for the host's CPU).
"""

import os

from allvm import LLVM_VERSION, __version__
from allvm.errors import AllvmError

# Bump when the cache's layout changes (allvm/cache.py).
CACHE_FORMAT = 2
ZIG_VERSION = "0.17.1"
TIER_VARIABLE = "ALLVM_TIER"
CPU_VARIABLE = "ALLVM_CPU"
CARRY_VARIABLE = "ALLVM_CARRY_IR"
BASELINE_CPU = "x86-64"
NATIVE_CPU = "native"
# The platform a program is linked with (allvm/platform/: the libc fixes, the allocator and its
# pinned source, the string functions) is named by its sources' content, so that a binary
# linked with another platform is never reused.
PLATFORM_SOURCES = ("libc.py", "malloc.py", "strings.py")


def platform_id() -> str:
    """A digest of the platform's sources (read, not imported: alley's cache-hit path)."""
    from _blake2 import blake2b

    digest = blake2b(digest_size=8)
    platform = os.path.join(os.path.dirname(os.path.dirname(__file__)), "platform")
    for name in PLATFORM_SOURCES:
        with open(os.path.join(platform, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


PLATFORM_ID = platform_id()


class CodegenSettings:
    """What changes the code for the same IR: target CPU and its features (empty: the CPU's
    own), LLVM's optimization level, tier, and the profile of real runs it is optimized with
    (allvm.native.profile; its identity, or ""); and whether a static binary made with them
    carries its allexe (allvm.native.carry: not code, but the binary's bytes)."""

    __slots__ = ("cpu", "features", "opt_level", "tier", "profile", "carry_ir")

    def __init__(self, *, cpu: str, opt_level: int, tier: str, profile: str = "",
                 features: str = "", carry_ir: bool = True):
        self.cpu, self.opt_level, self.tier, self.profile = cpu, opt_level, tier, profile
        self.features, self.carry_ir = features, carry_ir

    @property
    def codegen_id(self) -> str:
        """The cache's name for these settings and this toolchain (versions included)."""
        cpu = f"{self.cpu} {self.features}" if self.features else self.cpu
        base = (f"allvm-py {__version__}; cache format {CACHE_FORMAT}; LLVM {LLVM_VERSION}; "
                f"zig {ZIG_VERSION}; platform {PLATFORM_ID}; cpu {cpu}; O{self.opt_level}")
        if not self.carry_ir:  # (named only when off: the default key stays as it was)
            base = f"{base}; binary without its allexe"
        if self.tier != "optimized":
            base = f"{base}; tier {self.tier}"
        return f"{base}; profile {self.profile}" if self.profile else base

    def replace(self, **changes) -> "CodegenSettings":
        """These settings with some of them changed."""
        return CodegenSettings(**{**{name: getattr(self, name) for name in self.__slots__},
                                  **changes})

    def with_profile(self, identity: str) -> "CodegenSettings":
        """These settings, optimized with the profile `identity`."""
        return self.replace(profile=identity)

    def __repr__(self) -> str:
        return f"CodegenSettings({self.codegen_id!r})"


OPTIMIZED = CodegenSettings(cpu=BASELINE_CPU, opt_level=2, tier="optimized")
FAST = CodegenSettings(cpu=BASELINE_CPU, opt_level=0, tier="fast")
TIERS = {"fast": FAST, "optimized": OPTIMIZED}
INPROCESS = CodegenSettings(cpu=BASELINE_CPU, opt_level=2, tier="inprocess")


def jit_tier() -> CodegenSettings:
    """The JIT path's tier: `$ALLVM_TIER` (fast or optimized), fast by default."""
    return TIERS.get(os.environ.get(TIER_VARIABLE, ""), FAST)


def static_settings(cpu: str | None = None) -> CodegenSettings:
    """What static binaries are made with and keyed by: OPTIMIZED for the CPU chosen (`cpu`,
    else `$ALLVM_CPU`: x86-64, the default, or native), carrying the allexe unless
    `$ALLVM_CARRY_IR=0`."""
    choice = cpu or os.environ.get(CPU_VARIABLE) or BASELINE_CPU
    carry = os.environ.get(CARRY_VARIABLE, "1")
    if carry not in ("0", "1"):
        raise AllvmError(f"${CARRY_VARIABLE} must be 0 or 1, not '{carry}'")
    if choice == BASELINE_CPU and carry == "1":
        return OPTIMIZED
    if choice == NATIVE_CPU:
        name, features = host_cpu()
    elif choice == BASELINE_CPU:
        name, features = BASELINE_CPU, ""
    else:
        raise AllvmError(f"unknown CPU '{choice}' (${CPU_VARIABLE}, -mcpu): "
                         f"{BASELINE_CPU} or {NATIVE_CPU}")
    return OPTIMIZED.replace(cpu=name, features=features, carry_ir=carry == "1")


_HOST_CPU: list[tuple[str, str]] = []  # this process's answer, once asked


def host_cpu() -> tuple[str, str]:
    """This machine's CPU as LLVM names it, and its features (`+avx2,-avx512f,...`, what the
    target machine is given): what `native` means, spelled out so that keys name it."""
    if not _HOST_CPU:
        from llvmlite import binding

        _HOST_CPU.append((binding.get_host_cpu_name(),
                          binding.get_host_cpu_features().flatten(sort=True)))
    return _HOST_CPU[0]
