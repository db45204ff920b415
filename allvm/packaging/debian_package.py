"""One source package through `allvm-debian build`: fetch, build, allexes, tests, report.

The steps are allvm.packaging.debian_build's; this module strings them together, makes the
allexes and runs the test modes. report.json's fields:

- `package`, `version`, `languages` (["C"], ["C", "C++"]...), `target` (the triple the
  package was built for), `built` (bool), `error` (one line, or null), `unavailable` (true
  when the mirror did not serve the source: not a build failure), `build_errors` (a failed
  build's first error lines from its log), `seconds`,
  `build_seconds`, `build_deps_installed` (what `apt-get build-dep` installed this time);
- `executables`: the ELF executables in the built .debs (and the programs of the build tree
  the package list names: allvm.packaging.debian_list); `allexes`: how many became allexes;
- `programs`: per allexe, `name`, `path` (in the .deb, or `(build tree) PATH`), `allexe`,
  `modules` (module names),
  `native_libraries` (Debian libraries it links natively), `warnings`, and `ir_share`: the
  fraction of the program's translation units (its own and its shared libraries' with
  bitcode) whose code is IR in the allexe (the rest was assembled natively); Debian's native
  libraries are not the package's code and do not count;
- `libraries`: the package's shared libraries (`name`, `path`, `ir`: OUT/PKG/libs/NAME.bc);
- `tests`: for each of `native`, `jit`, `static`: `passed`, `failed`, `failed_names`,
  `skipped_names` (automake's SKIP), `seconds` (absent with -no-test; `jit` and `static`
  absent too when the tests run none of the .debs' programs, as for a library-only
  package); `test_command`: what ran them (the package list's command, if it names one; its
  command cases run after it);
  `tested_in_tree`: the build tree's files replaced by the allexes' stubs ({file: program});
  `known_failures`: {test: the list's reason} for the failed tests the list explains.
"""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from allvm.errors import AllvmError
from allvm.packaging import debian_build as db
from allvm.packaging import package_tests as pt
from allvm.packaging.debian_list import Entry

MODES = ("native", "jit", "static")


def new_report(name: str) -> dict:
    return {"package": name, "version": None, "languages": [], "built": False, "error": None,
            "unavailable": False, "target": db.TARGET, "executables": 0, "allexes": 0,
            "programs": [], "libraries": [], "tests": {}, "build_deps_installed": [],
            "seconds": 0.0}


def write_report(out: Path, report: dict) -> None:
    """OUT/PKG/report.json, written whole (a run stopped while writing it leaves none: a
    resumed sample, corpus/distro_sample.py, takes a package with a report as done)."""
    temporary = out / ".report.json.tmp"
    temporary.write_text(json.dumps(report, indent=2) + "\n")
    temporary.replace(out / "report.json")


def make_allexes(root: Path, out: Path, report: dict, tree: Path | None = None,
                 tree_programs: list[str] = ()) -> dict[str, tuple[Path, Path]]:
    """An allexe per ELF executable of the .debs, and per program of the build tree the list
    names (`tree_programs`, relative to `tree`): {name: (program, allexe)}; the shared
    libraries' IR into OUT/PKG/libs."""
    from allvm.packaging.wllvm import link_bitcode

    found = db.elf_files(root)
    dirs = db.library_dirs(root, found["library"])
    (out / "allexes").mkdir()
    (out / "libs").mkdir()
    for library in found["library"]:
        paths = _paths(library)
        if paths is None:
            continue
        ir = out / "libs" / f"{library.name}.bc"
        try:
            ir.write_bytes(link_bitcode(paths, str(library)).as_bitcode())
        except AllvmError as e:
            report.setdefault("warnings", []).append(f"{library.name}: {e}")
            continue
        report["libraries"].append({"name": library.name, "path": f"/{library.relative_to(root)}",
                                    "ir": str(ir)})
    report["executables"] = len(found["executable"]) + len(tree_programs)
    made: dict[str, tuple[Path, Path]] = {}
    for program in found["executable"]:
        name = program.name if program.name not in made else str(program.relative_to(root))
        _add_allexe(name.replace("/", "_"), program, f"/{program.relative_to(root)}", root,
                    dirs, out, made, report)
    for relative in tree_programs:
        program = tree / relative
        if not program.is_file():
            report.setdefault("warnings", []).append(f"{relative}: not in the build tree")
            continue
        _add_allexe(program.name, program, f"(build tree) {relative}", root, dirs, out, made,
                    report)
    report["allexes"] = len(made)
    return made


def _add_allexe(name: str, program: Path, shown: str, root: Path, dirs: list[str], out: Path,
                made: dict, report: dict) -> None:
    """OUT/PKG/allexes/NAME.allexe from one program, its shared libraries with bitcode as IR
    modules; a program that cannot be one is a warning."""
    from allvm.allexe import MAIN_MODULE, write_allexe
    from allvm.packaging.wllvm import Extraction, MissingSection

    allexe = out / "allexes" / f"{name}.allexe"
    try:
        extraction = Extraction(str(program), dirs)
        main = extraction.main_module()
        modules = [(MAIN_MODULE, main.as_bitcode()),
                   *((installed_name(module, root), ir)
                     for module, ir in extraction.library_modules())]
        write_allexe(str(allexe), modules, force=True)
    except MissingSection:
        report.setdefault("warnings", []).append(f"{name}: no bitcode (not built by allcc)")
        return
    except (AllvmError, RuntimeError, OSError) as e:  # this program only
        report.setdefault("warnings", []).append(f"{name}: {e}")
        return
    made[name] = (program, allexe)
    report["programs"].append({
        "name": name, "path": shown, "allexe": str(allexe),
        "modules": [m for m, _ in modules], "ir_share": round(extraction.ir_share, 4),
        "native_libraries": [path for _, path in extraction.native_libraries],
        "warnings": extraction.warnings()})


def installed_name(module: str, root: Path) -> str:
    """A library module's name: the library's installed path (`/lib/x86_64-linux-gnu/
    libbz2.so.1.0.4.bc`), not where the .deb was unpacked."""
    prefix = f"{root}/"
    return "/" + module[len(prefix):] if module.startswith(prefix) else module


def _paths(binary: Path) -> list[str] | None:
    from allvm.packaging.wllvm import MissingSection, bitcode_paths

    try:
        return bitcode_paths(str(binary))
    except (MissingSection, AllvmError):
        return None


def tree_programs(tree: Path, programs: dict[str, tuple[Path, Path]]) -> dict[Path, str]:
    """The build tree's files that are the allexes' programs ({file: program name}): the same
    translation units (`.llvm_bc` section), whatever the file is called there (lzip installs
    its `lzip` as `lzip.lzip`). Debian's staging directories (debian/tmp, debian/PACKAGE)
    are not the tree's; its build directories (xz-utils' debian/normal-build) are."""
    by_units: dict[bytes | None, list[str]] = {}
    for name, (program, _) in programs.items():
        by_units.setdefault(db.section(program), []).append(name)
    skip = tuple(str(tree / "debian" / d) for d in ("tmp", *db.binary_packages(tree)))
    found = {}
    for path in db.elf_files(tree, skip)["executable"]:
        units = db.section(path)
        if units is not None and units in by_units:  # bzip2, bzcat, bunzip2: one program
            names = by_units[units]
            found[path] = path.name if path.name in names else names[0]
    return found


def test_command(tree: Path) -> list[str]:
    """What debhelper runs for the tests: the package's override of dh_auto_test (for
    architecture-dependent packages, or all), else dh_auto_test."""
    rules = (tree / "debian" / "rules").read_text(errors="replace")
    for target in ("override_dh_auto_test-arch", "override_dh_auto_test"):
        if re.search(rf"^\s*{target}\s*:", rules, re.M):
            return ["debian/rules", target]
    return ["dh_auto_test"]


def suite_command(tree: Path, entry: Entry | None) -> list[str] | None:
    """The suite a mode runs: the list's command for the package if it names one (None: it
    says none), else what Debian's build runs."""
    listed = entry.test_command if entry else None
    if listed is None:
        return test_command(tree)
    return ["bash", "-c", listed] if listed else None


def prepare_mode(mode: str, out: Path, env: dict, programs: dict, stub: Path | None,
                 report: dict) -> tuple[Path, dict]:
    """The mode's programs in OUT/PKG/bin/MODE (native: links to them; the alley paths:
    alley's stub for each allexe, each allexe compiled beforehand into the mode's own cache:
    the JIT path never finds a static binary) and the mode's environment: (bindir, env)."""
    bindir = out / "bin" / mode
    bindir.mkdir(parents=True, exist_ok=True)
    env = dict(env)
    if mode == "native":
        for name, (program, _) in programs.items():
            pt.install(bindir, name, program, None)
        return bindir, env
    env["ALLVM_CACHE_DIR"] = str(out / f"cache-{mode}")
    if mode == "jit":  # stay the JIT path: no promotion to a static binary
        env["ALLVM_TIER"] = "optimized"
    for name, (_, allexe) in programs.items():
        pt.install(bindir, name, allexe, stub)
    allexes = [str(allexe) for _, allexe in programs.values()]
    prepare = ([[str(db.BIN / "alley"), "-noexec", a] for a in allexes] if mode == "jit"
               else [[str(db.BIN / "allready"), *allexes]])
    for command in prepare:
        proc = subprocess_run(command, env)
        if proc.returncode != 0:
            report.setdefault("warnings", []).append(
                f"{mode}: {os.path.basename(command[-1])}: {proc.stderr.strip()[-300:]}")
    return bindir, env


def run_tests(mode: str, tree: Path, out: Path, bindir: Path, env: dict,
              in_tree: dict[Path, str], entry: Entry | None) -> pt.Outcome:
    """The package's suite with the mode's programs in the build tree, then the list's
    command cases with them first on PATH."""
    replacements = ({} if mode == "native"
                    else {path: bindir / name for path, name in in_tree.items()})
    command = suite_command(tree, entry)
    log = out / "build.log"
    started = time.monotonic()
    checks, skipped = [], []
    if command:
        with open(log, "a") as f:
            f.write(f"\n=== tests: {mode} ===\n")
        with pt.programs_replaced(replacements):
            status = db.run_logged(command, tree, env, log, db.TEST_TIMEOUT)
        text = log.read_text(errors="replace").rsplit(f"=== tests: {mode} ===", 1)[-1]
        shown = command[-1] if command[:2] == ["bash", "-c"] else " ".join(command)
        checks, skipped = pt.parse_results(text, status, shown), pt.automake_skipped(text)
    if entry and entry.cases:
        work = out / "scratch" / mode
        work.mkdir(parents=True, exist_ok=True)
        case_env = dict(env, PATH=f"{bindir}{os.pathsep}{env['PATH']}")
        variables = {"tree": str(tree), "list": str(entry.directory), "work": str(work)}
        checks += [pt.run_case(case, variables, case_env, work) for case in entry.cases]
    return pt.Outcome(checks, time.monotonic() - started, skipped)


def test_modes(name: str, tree: Path, out: Path, env: dict, programs: dict,
               entry: Entry | None, report: dict) -> None:
    """The tests natively, then on alley's two paths when they run any of the programs (the
    suite in the build tree, or the list's cases); the outcomes into the report, with the
    list's reason for each known failure."""
    in_tree = tree_programs(tree, programs)
    report["tested_in_tree"] = {str(p.relative_to(tree)): n for p, n in in_tree.items()}
    command = suite_command(tree, entry)
    report["test_command"] = " ".join(command) if command else ""
    stub = pt.fresh_stub(out)
    for mode in MODES if in_tree or (entry and entry.cases) else MODES[:1]:
        db.say(name, f"testing: {mode}")
        bindir, env_mode = prepare_mode(mode, out, env, programs, stub, report)
        outcome = run_tests(mode, tree, out, bindir, env_mode, in_tree, entry)
        report["tests"][mode] = outcome.as_dict()
        db.say(name, f"  {outcome.passed} passed, {len(outcome.failed_names)} failed")
    failed = {n for result in report["tests"].values() for n in result["failed_names"]}
    if entry and failed & set(entry.reasons):
        report["known_failures"] = {n: entry.reasons[n] for n in sorted(failed)
                                    if n in entry.reasons}


def subprocess_run(command: list[str], env: dict):
    return subprocess.run(command, env=env, capture_output=True, text=True)


def make_tree_programs(command: str, tree: Path, env: dict, log: Path) -> None:
    """The package list's line that makes the build tree's programs Debian's build does not."""
    status = db.run_logged(["bash", "-c", command], tree, env, log, db.BUILD_TIMEOUT)
    if status != 0:
        raise db.PackageError(f"the list's `{command}` failed (exit {status}; see {log})")


def build_package(name: str, out_root: Path, jobs: int = 1, test: bool = True,
                  keep: bool = False, entry: Entry | None = None) -> dict:
    """Everything for one package, with what the package list knows of it (`entry`); the
    report is written whatever happens (a failure is its `error`), and returned."""
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    db.clean_work(out, keep=False)
    report = new_report(name)
    started = time.monotonic()
    tree = None
    try:
        source, report["version"] = db.resolve(name)
        report["package"] = source
        log = out / "build.log"
        log.write_text("")
        db.say(name, f"fetching the source of {source} {report['version']}")
        tree = db.fetch(source, out)
        report["languages"] = db.languages(tree)
        if not report["languages"]:
            raise db.PackageError(f"{name}: no C or C++ code (nothing to make allexes of)")
        db.say(name, "installing the build dependencies")
        report["build_deps_installed"] = db.install_build_deps(source, log)
        compilers = db.make_compilers(out / "compilers")
        db.say(name, f"building with dpkg-buildpackage (log: {log})")
        report["build_seconds"] = round(db.build(tree, db.build_env(compilers, jobs,
                                                                    check=False), log), 1)
        report["built"] = True
        debs = sorted(tree.parent.glob("*.deb"))
        db.unpack_debs(debs, out / "root")
        if entry and entry.tree.get("make"):
            make_tree_programs(entry.tree["make"], tree, db.build_env(compilers, jobs,
                                                                      check=True), log)
        db.say(name, "making allexes of the programs in the .debs")
        programs = make_allexes(out / "root", out, report, tree,
                                entry.tree_programs if entry else [])
        if test:
            test_modes(name, tree, out, db.build_env(compilers, jobs, check=True), programs,
                       entry, report)
    except (AllvmError, OSError, subprocess.SubprocessError) as e:
        report["unavailable"] = isinstance(e, db.SourceUnavailable)
        if getattr(e, "details", None):
            report["build_errors"] = e.details
        report["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
        db.say(name, f"FAILED: {report['error']}")
    except KeyboardInterrupt:
        report["error"] = "interrupted"
        raise
    finally:
        report["seconds"] = round(time.monotonic() - started, 1)
        write_report(out, report)
        if not keep and tree is not None:
            shutil.rmtree(out / "src", ignore_errors=True)
            for scratch in ("root", "bin", "cache-jit", "cache-static", "compilers", "stub",
                            "scratch"):
                path = out / scratch
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                elif path.exists():
                    path.unlink()
    return report

