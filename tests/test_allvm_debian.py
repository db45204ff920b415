"""allvm-debian build end to end on real Debian packages (hello: C; bzip2: programs using the
package's own shared library; lzip: C++), the library search seam of wllvm-extract, native
Debian libraries recorded in the IR, and every bad input's one line.

The three packages are built once per session, in one `allvm-debian build -j 2` run (about
five minutes on two cores); the sources are downloaded at test time, never committed."""

import json
import os
import subprocess

import pytest
from conftest import run_tool

from allvm.allexe import Allexe
from allvm.ir import parse_module
from allvm.packaging.wllvm import dependent_libraries

PACKAGES = ("hello", "bzip2", "lzip")
MODES = ("native", "jit", "static")
GNU = {"ALLVM_CC_TARGET": "x86_64-linux-gnu"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("allvm-debian")
    # with a package that fails at once: it stops none of the others
    proc = run_tool("allvm-debian", "build", "-o", out, "-j", "2", "no-such-package-xyz",
                    *PACKAGES, timeout=2400)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr
    assert proc.stderr.splitlines() == [
        "allvm-debian: no-such-package-xyz: unknown package (no source package of that name "
        "in bookworm's deb-src)"], proc.stdout[-3000:] + proc.stderr
    return out, proc


def report(out, package: str) -> dict:
    return json.loads((out / package / "report.json").read_text())


def test_progress_and_report_md(built):
    out, proc = built
    for package in PACKAGES:
        for phase in ("building with dpkg-buildpackage", "testing: static"):
            assert f"[{package}] {phase}" in proc.stdout
    table = (out / "report.md").read_text()
    assert "| hello | 2.10-3 | C | x86_64-linux-gnu | yes | 1 | 1 | 100% | 4/4 | 4/4 | 4/4 |" \
        in table
    assert "4 package(s): 3 built, 3 with an allexe for every executable, 3 of those" in table
    assert "| no-such-package-xyz | — | — | x86_64-linux-gnu | no | 0 | 0 |" in table
    assert not (out / "hello" / "src").exists()  # no -keep: the build tree is gone


@pytest.mark.parametrize("package", PACKAGES)
def test_report_fields_and_tests_pass_on_both_paths(built, package):
    out, _ = built
    r = report(out, package)
    assert r["package"] == package and r["built"] and r["error"] is None
    assert r["target"] == "x86_64-linux-gnu"
    assert r["version"] and r["languages"] and r["seconds"] > 0
    assert r["executables"] == r["allexes"] == len(r["programs"]) >= 1
    for program in r["programs"]:
        assert os.path.exists(program["allexe"]) and program["modules"][0] == "main.bc"
        assert program["ir_share"] == 1.0 and program["warnings"] == []
    native = r["tests"]["native"]
    assert native["passed"] >= 1 and native["failed"] == 0
    for mode in MODES:
        assert set(r["tests"][mode]) == {"passed", "failed", "failed_names", "skipped_names",
                                         "seconds"}
        assert r["tests"][mode]["passed"] == native["passed"], mode
        assert r["tests"][mode]["failed_names"] == [], mode
    assert r["tested_in_tree"], "no build-tree program was replaced by its allexe"


def test_hello_runs(built):
    out, _ = built
    proc = run_tool("alley", out / "hello" / "allexes" / "hello.allexe", "-g", "hi")
    assert (proc.returncode, proc.stdout) == (0, "hi\n")


def test_bzip2_programs_carry_the_shared_library_as_ir(built):
    out, _ = built
    r = report(out, "bzip2")
    assert [lib["name"] for lib in r["libraries"]] == ["libbz2.so.1.0.4"]
    assert os.path.exists(r["libraries"][0]["ir"])
    bzip2 = next(p for p in r["programs"] if p["name"] == "bzip2")
    assert bzip2["modules"] == ["main.bc", "/lib/x86_64-linux-gnu/libbz2.so.1.0.4.bc"]
    assert {p["name"] for p in r["programs"]} == {"bzip2", "bzcat", "bunzip2", "bzip2recover"}
    assert r["tested_in_tree"] == {"bzip2": "bzip2", "bzip2recover": "bzip2recover"}
    proc = subprocess.run([str(out / "bzip2" / "allexes" / "bzip2.allexe"), "-c"],
                          input=b"allvm" * 1000, capture_output=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.startswith(b"BZh9")


def test_lzip_is_cpp(built):
    out, _ = built
    r = report(out, "lzip")
    assert r["languages"] == ["C++"]
    assert [p["name"] for p in r["programs"]] == ["lzip.lzip"]  # installed as lzip.lzip
    assert list(r["tested_in_tree"].values()) == ["lzip.lzip"]  # ... built as `lzip`


# --- wllvm-extract: which library, and what is left out --------------------------------------

MAIN_C = """#include <stdio.h>
const char *zlibVersion(void);
int main(void) { printf("%s\\n", zlibVersion()); return 0; }
"""


@pytest.fixture(scope="module")
def seam(tmp_path_factory):
    """A build tree whose own `libz.so.1` (with bitcode) shadows Debian's, a program linked
    against it with -L (no rpath, in another directory), and one linked against Debian's."""
    d = tmp_path_factory.mktemp("seam")
    (d / "lib").mkdir()
    (d / "bin").mkdir()
    (d / "z.c").write_text('const char *zlibVersion(void) { return "own zlib"; }\n')
    (d / "main.c").write_text(MAIN_C)
    env = {**os.environ, **GNU}
    for args in (["-fPIC", "-shared", "-Wl,-soname,libz.so.1", "z.c", "-o", "lib/libz.so.1"],
                 ["main.c", "-Llib", "-lz", "-o", "bin/own"],
                 ["main.c", "-lz", "-o", "bin/system"]):
        if args[-1] == "bin/own":
            os.symlink("libz.so.1", d / "lib" / "libz.so")
        proc = run_tool("allcc", *args, cwd=d, env=env)
        assert proc.returncode == 0, proc.stderr
    return d


def test_the_library_linked_against_wins_over_the_system_one(seam, tmp_path):
    out = tmp_path / "own.allexe"
    proc = run_tool("wllvm-extract", seam / "bin" / "own", "-o", out)
    assert (proc.returncode, proc.stderr) == (0, "")
    names = [m.name for m in Allexe.open(str(out)).modules]
    assert names == ["main.bc", f"{seam}/lib/libz.so.1.bc"]
    for run in (run_tool("alley", out), run_tool("allready", out), run_tool("alley", out)):
        assert run.returncode == 0, run.stderr
    assert run.stdout == "own zlib\n"


def test_library_dirs_given_come_before_the_system(seam, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    os.link(seam / "lib" / "libz.so.1", other / "libz.so.1")
    proc = run_tool("wllvm-extract", seam / "bin" / "system", "-L", other,
                    "-o", tmp_path / "x.allexe")
    assert proc.returncode == 0, proc.stderr
    names = [m.name for m in Allexe.open(str(tmp_path / "x.allexe")).modules]
    assert names == ["main.bc", f"{other}/libz.so.1.bc"]


def test_native_debian_library_is_recorded_in_the_ir(seam, tmp_path):
    out = tmp_path / "system.allexe"
    proc = run_tool("wllvm-extract", seam / "bin" / "system", "-o", out)
    assert (proc.returncode, proc.stderr) == (0, "")
    allexe = Allexe.open(str(out))
    assert [m.name for m in allexe.modules] == ["main.bc"]
    main = parse_module(allexe.read_module(allexe.modules[0]), "main.bc")
    assert dependent_libraries(main) == ["/lib/x86_64-linux-gnu/libz.so.1"]
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zlib1g"],
                             capture_output=True, text=True).stdout
    jit = run_tool("alley", out)
    assert jit.returncode == 0 and jit.stdout.strip() in version, jit.stderr
    assert run_tool("allready", out).returncode == 0
    assert run_tool("alley", out).stdout == jit.stdout


def test_a_library_left_out_is_always_a_warning(seam, tmp_path):
    d = tmp_path / "tree"
    d.mkdir()
    (d / "gone.c").write_text('const char *zlibVersion(void) { return "gone"; }\n')
    (d / "main.c").write_text(MAIN_C)
    env = {**os.environ, **GNU}
    # a library without bitcode in the build tree, and one deleted after the link
    subprocess.run([*zig_cc(), "-fPIC", "-shared", "-Wl,-soname,libnobc.so", "gone.c", "-o",
                    "libnobc.so"], cwd=d, check=True, capture_output=True)
    link = run_tool("allcc", "main.c", "-L.", "-lnobc", "-o", "nobc", cwd=d, env=env)
    assert link.returncode == 0, link.stderr
    proc = run_tool("wllvm-extract", d / "nobc", "-o", tmp_path / "nobc.allexe")
    assert proc.returncode == 0
    assert proc.stderr == (f"wllvm-extract: warning: shared library 'libnobc.so' left out "
                           f"({d}/libnobc.so has no bitcode): its code is not in the allexe\n")
    (d / "libnobc.so").unlink()
    proc = run_tool("wllvm-extract", d / "nobc", "-o", tmp_path / "nobc2.allexe")
    assert proc.stderr == ("wllvm-extract: warning: shared library 'libnobc.so' left out "
                           "(not found): its code is not in the allexe\n")


def zig_cc() -> list[str]:
    from allvm.toolchain import zig_command

    return zig_command("cc", "-target", "x86_64-linux-gnu")


def test_wrapper_answers_dumpmachine_as_debian_gcc():
    proc = run_tool("allcc", "-dumpmachine", env={**os.environ, **GNU})
    assert proc.stdout == "x86_64-linux-gnu\n"


def test_wrapper_drops_flags_it_cannot_honour(tmp_path):
    (tmp_path / "m.c").write_text("int main(void) { return 0; }\n")
    proc = run_tool("allcc", "-flto=auto", "-Wl,-Bsymbolic-functions", "-Werror",
                    "-specs=/usr/share/dpkg/no-pie-link.specs", "m.c", "-o", "m",
                    cwd=tmp_path, env={**os.environ, **GNU})
    assert proc.returncode == 0, proc.stderr
    assert "allcc: note: dropped '-specs=/usr/share/dpkg/no-pie-link.specs'" in proc.stderr
    assert "allcc: note: dropped '-flto=auto'" in proc.stderr
    assert "allcc: note: dropped '-Wl,-Bsymbolic-functions'" in proc.stderr


def test_glibc_fortify_wrappers_are_no_error_under_werror(tmp_path):
    """cjson builds with -Werror -Wused-but-marked-unused when the compiler is clang; glibc's
    _FORTIFY_SOURCE sprintf is marked unused: a warning, not an error."""
    (tmp_path / "f.c").write_text('#include <stdio.h>\n'
                                  'int f(char *b) { return sprintf(b, "%d", 1); }\n')
    proc = run_tool("allcc", "-O2", "-D_FORTIFY_SOURCE=2", "-Werror",
                    "-Wused-but-marked-unused", "-c", "f.c", cwd=tmp_path,
                    env={**os.environ, **GNU})
    assert proc.returncode == 0, proc.stderr
    assert "[-Wused-but-marked-unused]" in proc.stderr


def test_old_c_that_debian_gcc_accepts_builds(tmp_path):
    """Implicit int and an undeclared function are warnings for bookworm's gcc 12 and errors
    for clang: the gnu target keeps them warnings (ucspi-tcp, galera-3's configure probe),
    unless the build asks for the error itself."""
    (tmp_path / "old.c").write_text("main() { return getpid() > 0 ? 0 : 1; }\n")
    proc = run_tool("allcc", "-O2", "-Werror", "old.c", "-o", "old", cwd=tmp_path,
                    env={**os.environ, **GNU})
    assert proc.returncode == 0, proc.stderr
    assert "[-Wimplicit-function-declaration]" in proc.stderr
    assert subprocess.run([tmp_path / "old"]).returncode == 0
    proc = run_tool("allcc", "-Werror=implicit-int", "-c", "old.c", cwd=tmp_path,
                    env={**os.environ, **GNU})
    assert proc.returncode == 1 and "error: type specifier missing" in proc.stderr


def test_what_debian_gcc_and_libstdcxx_accept_builds(tmp_path):
    """Incompatible pointer types (djbdns) and __DATE__ under -Wdate-time (makefile2graph; zig
    makes it an error) are warnings, as with bookworm's gcc 12; std::unary_function, which
    libc++ drops in C++17 and libstdc++ keeps, is there (idba, Boost 1.74's headers)."""
    (tmp_path / "p.c").write_text("#include <stdio.h>\nvoid f(unsigned *p);\n"
                                  "int main(void) { unsigned long x = 0; f(&x);\n"
                                  "  puts(__DATE__); return 0; }\nvoid f(unsigned *p) {}\n")
    proc = run_tool("allcc", "-Wdate-time", "p.c", "-o", "p", cwd=tmp_path,
                    env={**os.environ, **GNU})
    assert proc.returncode == 0, proc.stderr
    assert "[-Wincompatible-pointer-types]" in proc.stderr and "[-Wdate-time]" in proc.stderr
    (tmp_path / "u.cc").write_text(
        "#include <functional>\n#include <algorithm>\n#include <vector>\n"
        "struct H : std::unary_function<int, unsigned> {\n"
        "  unsigned operator()(int x) const { return x; } };\n"
        "int main() { std::vector<int> v{2, 1}; std::random_shuffle(v.begin(), v.end());\n"
        "  return H()(0); }\n")
    proc = run_tool("allc++", "-w", "u.cc", "-o", "u", cwd=tmp_path, env={**os.environ, **GNU})
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([tmp_path / "u"]).returncode == 0


def test_gnu_target_compiles_for_the_host_glibc(tmp_path):
    """Unversioned, zig would use glibc 2.31's headers and stubs, and a link with a Debian
    library needing a newer symbol (libssl.so.3: stat@GLIBC_2.33) fails (galera-3)."""
    (tmp_path / "m.c").write_text("int main(void) { return 0; }\n")
    proc = run_tool("allcc", "-v", "-c", "m.c", cwd=tmp_path, env={**os.environ, **GNU})
    glibc = os.confstr("CS_GNU_LIBC_VERSION").split()[-1]
    assert f"-gnu{glibc}" in proc.stderr, proc.stderr[-2000:]
    assert run_tool("allcc", "-dumpmachine", env={**os.environ, **GNU}).stdout == \
        "x86_64-linux-gnu\n"
    # bzip2 links `.sho` objects: zig passes such a command to clang whole, which refuses
    # zig's versioned triple, so it keeps the unversioned one
    (tmp_path / "l.c").write_text("int f(void) { return 1; }\n")
    for args in (("-fPIC", "-c", "l.c", "-o", "l.sho"),
                 ("-shared", "-Wl,-soname,libl.so.1", "l.sho", "-o", "libl.so.1.0", "-lc")):
        proc = run_tool("allcc", *args, cwd=tmp_path, env={**os.environ, **GNU})
        assert proc.returncode == 0, proc.stderr


def test_build_environment_is_debians(tmp_path, monkeypatch):
    """Debian's python3 for a package's tests (ucspi-tcp imports python3-netifaces), not the
    virtualenv's or pyenv's; CMake told the multiarch directories zig does not name."""
    import shutil

    from allvm.packaging.debian_build import BIN, build_env

    monkeypatch.setenv("PATH", f"{BIN}:/root/.pyenv/shims:{os.environ['PATH']}")
    env = build_env(tmp_path, 1, check=True)
    directories = env["PATH"].split(":")
    assert directories[0] == str(tmp_path) and directories[-1] == str(BIN)
    assert shutil.which("python3", path=env["PATH"]) == "/usr/bin/python3"
    assert "VIRTUAL_ENV" not in env
    assert env["CMAKE_LIBRARY_PATH"].split(":")[0] == "/usr/lib/x86_64-linux-gnu"


# --- bad input: one line each ----------------------------------------------------------------

def one_line(proc, expected: str) -> None:
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [expected], proc.stderr


def test_unknown_package(tmp_path):
    proc = run_tool("allvm-debian", "build", "-o", tmp_path, "no-such-package-xyz")
    one_line(proc, "allvm-debian: no-such-package-xyz: unknown package (no source package of "
                   "that name in bookworm's deb-src)")


def test_package_without_c_code(tmp_path):
    proc = run_tool("allvm-debian", "build", "-o", tmp_path, "debconf", timeout=600)
    one_line(proc, "allvm-debian: debconf: no C or C++ code (nothing to make allexes of)")
    assert json.loads((tmp_path / "debconf" / "report.json").read_text())["built"] is False


def test_failed_build_names_the_log(tmp_path):
    env = {**os.environ, "DEB_CFLAGS_APPEND": "-fno-such-option-allvm"}
    proc = run_tool("allvm-debian", "build", "-o", tmp_path, "-no-test", "hello", env=env,
                    timeout=900)
    log = tmp_path / "hello" / "build.log"
    one_line(proc, f"allvm-debian: hello: the build failed (exit 2; see {log})")
    assert "-fno-such-option-allvm" in log.read_text()


def test_no_deb_src_access(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "sources.list").write_text("")
    (tmp_path / "apt.conf").write_text(
        f'Dir::Etc::sourcelist "{tmp_path}/sources.list";\n'
        f'Dir::Etc::sourceparts "{tmp_path}/parts";\n')
    env = {**os.environ, "APT_CONFIG": str(tmp_path / "apt.conf")}
    proc = run_tool("allvm-debian", "build", "-o", tmp_path / "out", "hello", env=env)
    one_line(proc, "allvm-debian: no deb-src access: apt has no source index (add a deb-src "
                   "entry and run apt-get update)")


def test_help_explains_every_option():
    proc = run_tool("allvm-debian", "--help")
    assert proc.returncode == 0
    for option in ("-o OUT", "-j N", "-no-test", "-keep", "allvm-debian build hello"):
        assert option in proc.stdout


# --- test results: automake, CTest, Meson, exit status ---------------------------------------

def test_results_of_each_kind_of_suite():
    from allvm.packaging.package_tests import parse_results

    automake = "PASS: t1\nFAIL: t2\nSKIP: t3\nXFAIL: t4\nFAIL: t2\n"
    assert [(c.name, c.passed) for c in parse_results(automake, 2, "make check")] == [
        ("t1", True), ("t2", False), ("t4", True)]
    ctest = ("50% tests passed, 1 tests failed out of 2\n\nThe following tests FAILED:\n"
             "\t  2 - second (Failed)\n")
    checks = parse_results(ctest, 8, "ctest")
    assert (len(checks), [c.name for c in checks if not c.passed]) == (2, ["second"])
    meson = (" 1/2 first         OK              0.01s\n"
             " 2/2 second        FAIL            0.01s   exit status 1\n\n"
             "Ok:                 1   \nExpected Fail:      0   \nFail:               1   \n")
    checks = parse_results(meson, 1, "meson test")
    assert (len(checks), [c.name for c in checks if not c.passed]) == (2, ["second"])
    [check] = parse_results("all fine\n", 0, "make test")
    assert (check.name, check.passed) == ("make test", True)
