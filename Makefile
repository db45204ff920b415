# allvm-py: `make demo` (the main job, end to end) and `make test` (the test suite).
# Both set up what they need first: .venv/ with pinned dependencies, zig's libc builds warmed,
# alley's native launcher built, the platform built as IR.
# Each step leaves a stamp, so a second run is quick.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.allvm-installed
PLATFORM_WARM := $(VENV)/.allvm-platform-warm
LAUNCHER := $(VENV)/.allvm-launcher
PLATFORM_IR := $(VENV)/.allvm-platform-ir
TEST_DEPS := $(VENV)/.allvm-test-deps
CORPUS_DEPS := $(VENV)/.allvm-corpus-deps

.PHONY: setup demo test lint clean fuzz corpus bench distro-sample

setup: $(INSTALLED) $(PLATFORM_WARM) $(LAUNCHER) $(PLATFORM_IR)

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "allvm-py needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' \
		--config-settings editable_mode=compat
	touch $@

# zig builds its libc and the C++ runtime from source on a link's first use (a few minutes on
# 2 cores): every link the tools make (JIT path, allready, gnu; C and C++) is made once, here,
# with the platform's own objects (libc fixes, string functions, and the allocator: mimalloc,
# whose Debian source apt-get fetches, hence the deb-src entry).
PLATFORM_SOURCES := allvm/platform/libc.py allvm/platform/malloc.py allvm/platform/strings.py
$(PLATFORM_WARM): $(INSTALLED) allvm/platform/__init__.py $(PLATFORM_SOURCES)
	@echo "Warming the platform: zig's libc and C++ runtime builds (once, a few minutes)..."
	$(PY) -c 'from allvm.packaging.debian import ensure_deb_src; ensure_deb_src()'
	$(PY) -m allvm.platform
	touch $@

# alley's native launcher (allvm/launcher.c), in place of the alley script pip installs;
# rebuilt when it or the formats it shares with the Python side change.
$(LAUNCHER): $(INSTALLED) allvm/launcher.c allvm/launcher.py allvm/cache.py allvm/allexe.py \
		allvm/bitcode.py allvm/execute.py allvm/__init__.py allvm/native/settings.py \
		$(PLATFORM_SOURCES)
	$(PY) -m allvm.launcher
	touch $@

# Debian's clang-14 makes the LLVM-4-era-style bitcode the old-input tests load; its
# llvm-as-14 writes bitcode with old debug info (tests/test_old_ir.py); its libFuzzer, ASan and
# UBSan runtimes (libclang-rt-14-dev) build the launcher's fuzzer (tests/test_fuzz_launcher.py).
# libstdc++'s headers and Boost.Program_options: a gnu C++ program using a Debian C++ library
# (tests/test_gnu_cxx.py).
$(TEST_DEPS): Makefile
	command -v clang-14 >/dev/null && command -v llvm-as-14 >/dev/null && \
		test -f "$$(clang-14 --print-runtime-dir)/libclang_rt.fuzzer-x86_64.a" || \
		{ apt-get update -q && apt-get install -y -q clang-14 llvm-14 libclang-rt-14-dev; }
	test -f /usr/include/boost/program_options.hpp && test -d /usr/include/c++/12 || \
		{ apt-get update -q && apt-get install -y -q libboost-program-options-dev \
		libstdc++-12-dev; }
	touch $@

# The platform as IR (alltogether -platform-ir): musl as bitcode and the native runtime, built
# once per zig into zig's cache (about three minutes on 2 cores; rebuilt when zig, the build or
# the platform's own members -- libc fixes, string functions, allocator -- change).
$(PLATFORM_IR): $(PLATFORM_WARM) allvm/platform/libc_ir.py $(PLATFORM_SOURCES)
	$(PY) -m allvm.platform.libc_ir
	touch $@

demo: setup
	$(PY) examples/demo.py

test: setup $(TEST_DEPS)
	$(VENV)/bin/pytest -q

# The Debian corpus (corpus/): deb-src for bookworm, and what the packages' builds need.
$(CORPUS_DEPS): $(INSTALLED)
	$(PY) -c 'from allvm.packaging.debian import ensure_deb_src; ensure_deb_src()'
	apt-get install -y -q autoconf automake libtool libtool-bin bison flex tcl
	touch $@

# The corpus is a package list (corpus/packages.toml) that allvm-debian builds, 2 packages at
# once, into build/corpus/ (Debian's build, allexes, the tests natively and on alley's two
# paths); corpus/results.md and .json count the programs passing. PACKAGES="bzip2 zlib" for a
# part of it (the results keep the other packages' last reports).
corpus: setup $(CORPUS_DEPS)
	-$(VENV)/bin/allvm-debian build -list corpus/packages.toml -o build/corpus -j 2 $(PACKAGES)
	$(PY) -m corpus.results build/corpus

# allvm-debian on N source packages of bookworm main that nobody chose (the seeded rule:
# allvm/packaging/debian_sample.py), 2 at once into build/distro-sample/; the report is copied
# to corpus/distro-sample.md under a header (seed, N, date, machine, wall time).
N ?= 50
SEED ?= 1
distro-sample: setup $(CORPUS_DEPS)
	$(PY) -m corpus.distro_sample $(N) $(SEED)

# Every benchmark figure (alternating runs) into bench/results.{md,json,png} and README's
# Benchmarks section; needs the demo allexes, clang-14 (figure 2) and tclsh (sqlite3's sources).
# QUICK=1: smaller inputs, fewer runs (about 10 minutes).
bench: demo $(TEST_DEPS) $(CORPUS_DEPS)
	$(PY) bench/run.py $(if $(QUICK),--quick)

# Fuzz for FUZZ_SECONDS each: the allexe reader (atheris), then what alley's native launcher
# parses -- zip directory, launch record, sealed entry -- (libFuzzer with ASan and UBSan, built
# with clang-14 by fuzz/build_launcher_fuzzer.py into build/fuzz_launcher). The corpora and any
# crash go to build/ (the launcher's as build/launcher-crash-*).
FUZZ_SECONDS ?= 60
fuzz: $(INSTALLED) $(TEST_DEPS)
	mkdir -p build/fuzz-corpus
	$(PY) fuzz/fuzz_allexe.py build/fuzz-corpus -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build/
	$(PY) fuzz/build_launcher_fuzzer.py build/fuzz_launcher -seeds build/fuzz-launcher-corpus
	build/fuzz_launcher build/fuzz-launcher-corpus -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build/launcher-

lint: $(INSTALLED)
	$(VENV)/bin/ruff check allvm tests bench examples fuzz corpus

clean:
	rm -rf build .pytest_cache
