"""`make bench`: every benchmark figure, one after the other, then the report
(bench/results.md, .json, .png and README's Benchmarks section).

    .venv/bin/python bench/run.py [--quick] [--only 1,3] [--runs N]

--quick (make bench QUICK=1) uses smaller inputs and fewer runs; --only reruns some figures and
keeps the others from the last report. A figure that fails is reported as "not run" with its
error, and the others still run.
"""

import argparse
import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import figures  # noqa: E402
import report  # noqa: E402

NOISE = ("2 cores shared with other engineers' builds during the run, so expect noise; "
         "alternating runs spread it over contender and baseline alike.")


def progress(message: str, started: float) -> None:
    print(f"\n##### [{time.monotonic() - started:6.0f} s] {message}", flush=True)


def run_figures(chosen, settings: figures.Settings, started: float) -> list[dict]:
    records = []
    for i, (key, title, function) in enumerate(chosen, 1):
        progress(f"figure {key} ({i}/{len(chosen)}): {title}", started)
        try:
            records += function(settings)
        except Exception as error:  # noqa: BLE001 - one broken figure must not hide the rest
            traceback.print_exc()
            records.append({"figure": key, "metric": "not run", "goal": "",
                            "note": f"failed: {type(error).__name__}: {error}"[:400]})
    return records


def figure_key(record: dict) -> str:
    return record["figure"].split()[0]


def with_earlier_figures(records: list[dict], meta: dict, chosen) -> tuple[list[dict], dict]:
    """--only: the figures rerun now, and every other figure's records from the last report
    (in figure order), so a partial rerun never drops results."""
    previous = report.HERE / "results.json"
    if not previous.exists():
        return records, meta
    earlier = json.loads(previous.read_text())
    own_date = meta["date"] if meta["mode"] == "full" else f"{meta['date']} ({meta['mode']})"
    for record in records:  # the report's date is the full run's: these say their own
        record["date"] = own_date
    keys = {key for key, _, _ in chosen}
    kept = [r for r in earlier["records"] if figure_key(r) not in keys]
    order = [key for key, _, _ in figures.FIGURES]
    merged = sorted(kept + records, key=lambda r: order.index(figure_key(r))
                    if figure_key(r) in order else len(order))
    full_run = earlier["meta"]["date"]
    rerun = ", ".join(dict.fromkeys(figure_key(r) for r in merged
                                    if r.get("date", full_run) != full_run))
    meta = {**earlier["meta"], "noise": f"{NOISE} Figure(s) {rerun} rerun on their own since "
                                         "(each record's date is in the table)."}
    return merged, meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer runs")
    parser.add_argument("--only", help="comma-separated figure numbers (default: all)")
    parser.add_argument("--runs", type=int, help="alternating runs per figure")
    args = parser.parse_args()
    settings = figures.Settings(quick=args.quick, runs=args.runs or (3 if args.quick else 7))
    chosen = [f for f in figures.FIGURES if not args.only or f[0] in args.only.split(",")]
    started = time.monotonic()
    figures.WORK.mkdir(parents=True, exist_ok=True)
    records = run_figures(chosen, settings, started)
    if args.quick and any(f[0] == "5" for f in chosen):
        records.append({"figure": "5 allmux (coreutils)", "metric": "not run",
                        "goal": "mux ≤ 20% of static sum, ≤ 1.0× single-binary",
                        "note": "full mode only: coreutils is built three ways"})
    meta = {
        "command": "make bench QUICK=1" if args.quick else "make bench",
        "mode": "quick" if args.quick else "full", "runs": settings.runs,
        "date": datetime.date.today().isoformat(), "seconds": time.monotonic() - started,
        "machine": report.machine(), "host": f"{os.cpu_count()}-core shared", "noise": NOISE,
    }
    if args.only:
        records, meta = with_earlier_figures(records, meta, chosen)
    report.write_all(records, meta)
    progress("wrote bench/results.md, results.json, results.png and README's Benchmarks "
             "section", started)


if __name__ == "__main__":
    main()
