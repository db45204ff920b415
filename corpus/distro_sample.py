"""`make distro-sample N=50 SEED=S`: allvm-debian on N source packages that nobody chose.

    python -m corpus.distro_sample N SEED [--out DIR] [--jobs J] [--report FILE]

Picks the packages as `allvm-debian sample -n N -seed SEED` does (the rule:
allvm/packaging/debian_sample.py; sources the mirror does not serve are skipped and named),
builds them all with `allvm-debian build -o DIR -j J`
(default build/distro-sample, 2), and copies DIR/report.md to FILE (default
corpus/distro-sample.md) under a header naming the seed, N, the date, the machine, the
workers and the wall time. A failed package is in the report, never a stop.

A sample of 50 takes hours: a run that is stopped (Ctrl-C, a reboot) is resumed by the same
command. DIR/sample.json keeps the drawn packages and each run's start and wall time; a
package with its DIR/PKG/report.json is done, the others are built. Another N or SEED starts
afresh.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from allvm.errors import AllvmError
from allvm.packaging.debian_report import write_report_md
from allvm.packaging.debian_sample import sample

ROOT = Path(__file__).resolve().parent.parent
TOOL = Path(sys.executable).parent / "allvm-debian"
STATE = "sample.json"


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


def header(state: dict, jobs: int, done: int) -> list[str]:
    n, seed, names, unserved = state["n"], state["seed"], state["names"], state["unserved"]
    status = (" (a pilot)" if n < 50 else "") + (
        f" — {done} of {n} done so far: `make distro-sample N={n} SEED={seed}` resumes"
        if done < n else "")
    started = datetime.datetime.fromisoformat(state["runs"][0]["started"])
    minutes, secs = divmod(round(sum(run["seconds"] for run in state["runs"])), 60)
    runs = len(state["runs"])
    return [
        f"# allvm-debian on {n} packages nobody chose{status}", "",
        f"- sample: `allvm-debian sample -n {n} -seed {seed}` (the rule: "
        "`allvm/packaging/debian_sample.py`), from bookworm main's Sources index",
        f"- packages, in the sample's order: {', '.join(names)}",
        f"- skipped in that order, their sources not served by this machine's mirror (404): "
        f"{', '.join(unserved) or 'none'}",
        f"- run: `make distro-sample N={n} SEED={seed}` "
        f"(`allvm-debian build -j {jobs}`), started {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- wall time: {minutes} min {secs} s for the {n} packages, {jobs} at once "
        + (f"(in {runs} runs, the later ones resuming the stopped one; " if runs > 1 else "(")
        + "with `apt-get build-dep` for each: what it installed is in OUT/PKG/report.json)",
        "",
    ]


def resumed(out: Path, n: int, seed: int) -> dict | None:
    """The state of an earlier run of the same sample in `out`, if there is one."""
    try:
        state = json.loads((out / STATE).read_text())
    except (OSError, ValueError):
        return None
    return state if (state.get("n"), state.get("seed")) == (n, seed) else None


def drawn(out: Path, n: int, seed: int) -> dict:
    """A fresh sample: `out` emptied (its report is this sample's only), the packages drawn."""
    names, unserved = sample(n, seed)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    state = {"n": n, "seed": seed, "names": names, "unserved": unserved, "runs": []}
    save(out, state)
    return state


def save(out: Path, state: dict) -> None:
    temporary = out / f".{STATE}.tmp"
    temporary.write_text(json.dumps(state, indent=1) + "\n")
    temporary.replace(out / STATE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distro_sample", description=__doc__.split("\n")[0])
    parser.add_argument("n")
    parser.add_argument("seed")
    parser.add_argument("--out", default=str(ROOT / "build" / "distro-sample"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--report", default=str(ROOT / "corpus" / "distro-sample.md"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        state = resumed(out, int(args.n), int(args.seed)) or drawn(out, int(args.n),
                                                                  int(args.seed))
    except (AllvmError, ValueError) as e:
        print(f"distro-sample: {e}", file=sys.stderr)
        return 1
    names = state["names"]
    to_build = [name for name in names if not (out / name / "report.json").exists()]
    run = {"started": datetime.datetime.now(datetime.UTC).isoformat(), "seconds": 0.0}
    state["runs"].append(run)
    clock = time.monotonic()
    try:
        if to_build:
            subprocess.run([str(TOOL), "build", "-o", str(out), "-j", str(args.jobs), *to_build])
    finally:  # a stopped run's time counts too
        run["seconds"] = time.monotonic() - clock
        save(out, state)
    seconds = sum(r["seconds"] for r in state["runs"])
    body = write_report_md(out).read_text().splitlines()[2:]  # below its own title
    report = Path(args.report)
    done = sum((out / name / "report.json").exists() for name in names)
    report.write_text("\n".join(header(state, args.jobs, done) + body) + "\n")
    print(f"distro-sample: {len(names)} packages in {seconds / 60:.1f} min; report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
