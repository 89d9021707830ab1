"""Training feature tables: rows per second with 1 and 2 jobs, nothing cached.

    python benchmarks/train_tables.py [--files 300] [--repeat 2]

Takes a fixed random subset of the ``train`` rows of ../shared/data (the same
number from each category), and builds their feature tables for both n_fft
(1024 and 512) with ``dramapic_subs.train.tables.build_tables``, once with
``n_jobs=1`` and once with ``n_jobs=2``, alternating, each in a fresh process
with a fresh, empty cache folder. Prints table rows (windows) per second,
files per second, audio x real time, the 2-job speed-up, and the peak memory
(largest single process, and the sum of the parent and its joblib workers).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import ROOT, best, machine, python_job  # noqa: E402

DATA = Path(os.environ.get("DRAMAPIC_DATA", ROOT.parent / "shared" / "data"))

BUILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from dramapic_subs.features import FeatureSpec
from dramapic_subs.train.tables import build_tables, plan_jobs, read_manifest
data, subset, n_jobs = Path(sys.argv[1]), set(json.load(open(sys.argv[2]))), int(sys.argv[3])
rows = [r for r in read_manifest(data, "train") if r["path"] in subset]
jobs = plan_jobs(rows, augment_mixes=0)
with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:
    t0 = time.perf_counter()
    tables = build_tables(jobs, data_dir=data, specs=[FeatureSpec(1024), FeatureSpec(512)],
                          cache_dir=Path(cache), n_jobs=n_jobs)
    seconds = time.perf_counter() - t0
    cached = sum(1 for p in Path(cache).rglob("*") if p.is_file())
print(json.dumps({"seconds": seconds, "files": len(jobs), "rows": len(tables[1024]),
                  "audio_s": sum(float(r["duration_s"]) for r in rows), "cache_files": cached}))
"""


def subset(n_files: int, seed: int = 0) -> list[str]:
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    by_cat: dict[str, list[str]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["path"])
    rng = np.random.default_rng(seed)
    per = n_files // len(by_cat)
    picked = []
    for cat in sorted(by_cat):
        paths = sorted(by_cat[cat])
        picked += [paths[i] for i in rng.choice(len(paths), size=min(per, len(paths)), replace=False)]
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not (DATA / "manifest.csv").is_file():
        raise SystemExit(f"no labelled data at {DATA} (set DRAMAPIC_DATA)")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "subset.json"
        paths = subset(args.files)
        listing.write_text(json.dumps(paths))
        runs: dict[int, list] = {1: [], 2: []}
        for _ in range(args.repeat):
            for n_jobs in (1, 2):
                runs[n_jobs].append(python_job(BUILD, str(DATA), str(listing), str(n_jobs)))
    res = {n: best(r, "seconds") for n, r in runs.items()}
    first = res[1].report
    print(f"subset: {first['files']} train files ({args.files // 5} per category), "
          f"{first['audio_s'] / 60:.1f} min of audio, {first['rows']} table rows (windows), "
          f"both n_fft; fresh cache each run; best of {args.repeat}")
    for n_jobs, run in res.items():
        r = run.report
        assert r["cache_files"] >= r["files"], "every file must have been computed and cached"
        print(f"  n_jobs={n_jobs}: {r['seconds']:6.2f} s, {r['rows'] / r['seconds']:7.0f} rows/s, "
              f"{r['files'] / r['seconds']:5.1f} files/s, audio {r['audio_s'] / r['seconds']:4.0f}x real time   "
              f"[peak RSS {run.maxrss_mb:.0f} MB, all processes {run.tree_mb:.0f} MB]")
    print(f"  2 jobs / 1 job speed-up: {res[1].report['seconds'] / res[2].report['seconds']:.2f}x")


if __name__ == "__main__":
    main()
