"""The platform: what programs link against (libc, the C++ runtime, the native runtime)."""
