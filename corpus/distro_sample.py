"""`make distro-sample N=50 SEED=S`: allvm-debian on N source packages that nobody chose.

    python -m corpus.distro_sample N SEED [--out DIR] [--jobs J] [--report FILE]

Picks the packages as `allvm-debian sample -n N -seed SEED` does (the rule:
allvm/packaging/debian_sample.py; sources the mirror does not serve are skipped and named),
builds them all with `allvm-debian build -o DIR -j J`
(default build/distro-sample, 2), and copies DIR/report.md to FILE (default
corpus/distro-sample.md) under a header naming the seed, N, the date, the machine, the
workers and the wall time. A failed package is in the report, never a stop.
"""

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from allvm.errors import AllvmError
from allvm.packaging.debian_sample import sample

ROOT = Path(__file__).resolve().parent.parent
TOOL = Path(sys.executable).parent / "allvm-debian"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores ({model}), {platform.system()} " \
           f"{platform.release()}"


def header(n: int, seed: int, jobs: int, started: datetime.datetime, seconds: float,
           names: list[str], unserved: list[str], pilot: bool) -> list[str]:
    minutes, secs = divmod(round(seconds), 60)
    return [
        f"# allvm-debian on {n} packages nobody chose" + (" (a pilot)" if pilot else ""), "",
        f"- sample: `allvm-debian sample -n {n} -seed {seed}` (the rule: "
        "`allvm/packaging/debian_sample.py`), from bookworm main's Sources index",
        f"- packages, in the sample's order: {', '.join(names)}",
        f"- skipped in that order, their sources not served by this machine's mirror (404): "
        f"{', '.join(unserved) or 'none'}",
        f"- run: `make distro-sample N={n} SEED={seed}` "
        f"(`allvm-debian build -j {jobs}`), started {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- wall time: {minutes} min {secs} s for the {n} packages, {jobs} at once "
        "(with `apt-get build-dep` for each: what it installed is in OUT/PKG/report.json)",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distro_sample", description=__doc__.split("\n")[0])
    parser.add_argument("n")
    parser.add_argument("seed")
    parser.add_argument("--out", default=str(ROOT / "build" / "distro-sample"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", default=str(ROOT / "corpus" / "distro-sample.md"))
    args = parser.parse_args(argv)
    try:
        names, unserved = sample(int(args.n), int(args.seed))
    except (AllvmError, ValueError) as e:
        print(f"distro-sample: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    if out.exists():  # the report is this sample's only
        shutil.rmtree(out)
    started = datetime.datetime.now(datetime.UTC)
    clock = time.monotonic()
    subprocess.run([str(TOOL), "build", "-o", str(out), "-j", str(args.jobs), *names])
    seconds = time.monotonic() - clock
    body = (out / "report.md").read_text().splitlines()[2:]  # below its own title
    report = Path(args.report)
    report.write_text("\n".join(header(int(args.n), int(args.seed), args.jobs, started,
                                       seconds, names, unserved, int(args.n) < 50) + body)
                      + "\n")
    print(f"distro-sample: {len(names)} packages in {seconds / 60:.1f} min; report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
