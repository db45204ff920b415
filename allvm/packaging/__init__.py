"""Packaging real software as allexes: the compiler wrapper, ELF, wllvm extraction, Debian sources."""
