"""Native code from IR: one pipeline for every path that turns an allexe into machine code.

- `settings`: what changes the generated code (target CPU, optimization level, tier) and the
  codegen id that the cache keys on.
- `build`: look up what is cached, compile the missing modules, link, store.
- `promote`: a program first run from the fast tier gets its optimized static binary built in
  the background, so that its next start is a cache hit.

This package imports nothing at the top: `allvm.native.settings` is on alley's cache-hit path.
"""
