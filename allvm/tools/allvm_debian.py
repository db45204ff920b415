"""allvm-debian: Debian source packages into tested allexes, with no recipe of ours.

The work is allvm.packaging.debian_package (one package) and allvm.packaging.debian_build (its
steps); this is the command line around them.
"""

import os
import sys
from pathlib import Path

from allvm.cli import Tool
from allvm.errors import AllvmError

tool = Tool(
    "allvm-debian",
    "build: for each Debian source package (bookworm), fetch its source (apt-get source),\n"
    "install its build dependencies (apt-get build-dep; root), build it with Debian's own\n"
    "build system (dpkg-buildpackage) with allcc/allc++ as every compiler the build may call,\n"
    "for x86_64-linux-gnu against Debian's libraries, and make every ELF executable of the\n"
    "built .debs an allexe (OUT/PKG/allexes/), the package's own shared libraries as IR inside\n"
    "(and in OUT/PKG/libs/). Then run the package's build-time tests (what dh_auto_test runs)\n"
    "natively and with every built program replaced by its allexe, on alley's JIT path and on\n"
    "its static path (allready). Writes OUT/PKG/report.json, OUT/PKG/build.log, OUT/report.md.\n"
    "A package that fails never stops the others; the exit status is 1 if any failed.\n"
    "With -scheduler, each package is a task on a Dask cluster (the workers of allready\n"
    "-scheduler, as root, with the same allvm-py and -list FILE at the same path): a worker\n"
    "builds it as a local run would and sends OUT/PKG back, so OUT is written here and need\n"
    "not be shared.\n"
    "-list FILE: a package list (TOML; its format: allvm/packaging/debian_list.py) that says\n"
    "for each package only what a generic build cannot know -- a test selection or command\n"
    "cases instead of Debian's tests, programs of the build tree to make allexes of too, the\n"
    "reason of a known failure -- each override with its reason; with no PKG, every package\n"
    "of the list.\n\n"
    "sample: print N source packages of bookworm main chosen by a documented, seeded rule\n"
    "(C or C++, built by debhelper, at most 8 build-dependencies, at most 5 MB of source, a\n"
    "program package; drawn in a seeded order, skipping sources the mirror does not serve; see\n"
    "allvm/packaging/debian_sample.py), one per line, from the Sources index apt has.",
    "examples:\n"
    "  allvm-debian build hello                   # into ./allvm-debian-out/hello/\n"
    "  allvm-debian build -o out -j 2 bzip2 lzip  # two packages at once\n"
    "  allvm-debian build -no-test -keep hello    # allexes only; keep the build tree\n"
    "  allvm-debian build -scheduler tcp://10.0.0.1:8786 hello bzip2  # on a Dask cluster\n"
    "  allvm-debian build -list corpus/packages.toml -o build/corpus  # a package list\n"
    "  allvm-debian sample -n 50 -seed 1          # 50 packages nobody chose",
    intermixed=True,
)
tool.positional("command", choices=["build", "sample"], metavar="build|sample",
                help="the command")
tool.positional("packages", metavar="PKG", nargs="*",
                help="build: a source package (or a binary package: its source is built)")
tool.option("o", dest="out", metavar="OUT", default="allvm-debian-out",
            help="the output directory (default: allvm-debian-out)")
tool.option("j", dest="jobs", type=int, default=1, metavar="N",
            help="build N packages at once (default: 1); each build gets its share of the "
                 "cores for make -j")
tool.option("scheduler", metavar="ADDRESS",
            help="build on the Dask cluster of this scheduler (tcp://host:8786), each package "
                 "a task; -j is then the cluster's (default: $ALLVM_SCHEDULER, if set)")
tool.option("no-test", dest="test", action="store_false",
            help="do not run the packages' tests (allexes and report only)")
tool.option("keep", action="store_true",
            help="keep the build tree, the unpacked .debs and the caches under OUT/PKG")
tool.option("list", dest="package_list", metavar="FILE",
            help="build: the package list to read (with no PKG: every package of it)")
tool.option("n", dest="count", default="50", metavar="N",
            help="sample: how many packages (default: 50)")
tool.option("seed", default="0", metavar="S", help="sample: the random seed, an integer "
            "(default: 0)")


def integer(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise AllvmError(f"-{option}: expected an integer, not '{text}'") from None


def sample(args) -> int:
    from allvm.packaging.debian_sample import sample as choose

    if args.packages:
        raise AllvmError("sample takes no package names")
    chosen, unserved = choose(integer(args.count, "n"), integer(args.seed, "seed"))
    for name in chosen:
        print(name)
    if unserved:
        print(f"allvm-debian: skipped {len(unserved)} the mirror does not serve: "
              f"{' '.join(unserved)}", file=sys.stderr)
    return 0


def run(args) -> int:
    if args.command == "sample":
        return sample(args)
    from allvm.packaging.debian_list import load_list
    from allvm.packaging.debian_report import write_report_md

    entries = load_list(Path(args.package_list)) if args.package_list else {}
    if not args.packages and not entries:
        raise AllvmError("build: no package named (see 'allvm-debian --help')")
    if args.jobs < 1:
        raise AllvmError("-j: expected a number of packages of at least 1")
    out = Path(args.out).resolve()
    names = list(dict.fromkeys(args.packages or entries))
    reports = []
    try:
        with executor(args, entries) as builds:
            out.mkdir(parents=True, exist_ok=True)
            for report in builds.build(names, out, test=args.test, keep=args.keep):
                reports.append(report)
    except KeyboardInterrupt:
        if out.is_dir():
            write_report_md(out)
        tool.error("interrupted")
        return 130
    report_md = write_report_md(out)
    failed = [r for r in reports if r["error"]]
    for r in failed:
        tool.error(r["error"] if r["error"].startswith(f"{r['package']}:")
                   else f"{r['package']}: {r['error']}")
    print(f"{len(reports) - len(failed)} of {len(reports)} package(s) built; "
          f"report: {report_md}", flush=True)
    return 1 if failed else 0


def executor(args, entries: dict):
    """Where the packages are built: the Dask cluster of -scheduler (or $ALLVM_SCHEDULER), whose
    workers read the package list themselves and need deb-src themselves, else here."""
    scheduler = args.scheduler or os.environ.get("ALLVM_SCHEDULER")
    if scheduler:
        from allvm.packaging.debian_cluster import PackageCluster

        package_list = Path(args.package_list).resolve() if args.package_list else None
        return PackageCluster(scheduler, tool.warning, package_list)
    from allvm.packaging.debian import sources_index
    from allvm.packaging.debian_executors import LocalBuilds

    sources_index()  # deb-src reachable, set up where it is not
    return LocalBuilds(args.jobs, entries)


def main() -> int:
    return tool.run(run)
