"""Packaging real software as allexes: compiler wrapper, ELF, wllvm extraction, Debian."""
