"""Building real software into allexes: the compiler wrapper, extraction, Debian sources."""
