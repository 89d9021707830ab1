"""Feature parity: the working tree's features.py against a git revision's, on real files.

    python benchmarks/feature_parity.py [--rev REV] [--files 30]

The shipped models were trained on the pooled window features, so any speed
work in ``dramapic_subs/features.py`` must leave them numerically the same.
Columns appended after the revision's (``SONG_FEATURES``) are listed, not compared.
This loads ``features.py`` as it is at ``--rev`` beside the working tree's
(default: ``HEAD`` when the working tree changes features.py, else the
revision before the last commit that changed it), featurizes the same signals with both (a few labelled files
of every category from ../shared/data, plus tones, noise, silence and a
click train) for each n_fft the models use, and prints the largest absolute
difference per feature and overall, and the mel / chroma filter banks'
largest difference. Exit status 1 if any pooled feature differs by 1e-3 or
more, or a filter bank by 1e-6 or more.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dramapic_subs import features as current  # noqa: E402
from dramapic_subs.media import read_audio  # noqa: E402
from dramapic_subs.windows import make_grid  # noqa: E402

DATA = Path(os.environ.get("DRAMAPIC_DATA", ROOT.parent / "shared" / "data"))
SR = 16000
FEATURE_TOL = 1e-3
FILTER_TOL = 1e-6


def default_revision() -> str:
    """HEAD if features.py has uncommitted changes, else the parent of its last change."""
    path = "dramapic_subs/features.py"
    if subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", path]).returncode:
        return "HEAD"
    last = subprocess.run(["git", "-C", str(ROOT), "log", "-n", "1", "--format=%h", "--", path],
                          check=True, capture_output=True, text=True).stdout.strip()
    return f"{last}~"


def load_revision(rev: str):
    """``dramapic_subs/features.py`` as of ``rev``, imported as a sibling module."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:dramapic_subs/features.py"],
                            check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("dramapic_subs._features_at_rev", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "dramapic_subs"
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{rev}:dramapic_subs/features.py", "exec"), module.__dict__)
    return module


def signals(n_files: int) -> list[tuple[str, np.ndarray]]:
    """Real files (a few per category, both splits) and synthetic edge cases."""
    rng = np.random.default_rng(0)
    t = np.arange(6 * SR) / SR
    out = [
        ("tone 220 Hz", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)),
        ("white noise", (0.1 * rng.standard_normal(len(t))).astype(np.float32)),
        ("silence", np.zeros(len(t), np.float32)),
        ("clicks", (np.arange(len(t)) % 1600 == 0).astype(np.float32)),
        ("0.3 s blip", (0.2 * np.sin(2 * np.pi * 440 * t[: int(0.3 * SR)])).astype(np.float32)),
    ]
    if not (DATA / "manifest.csv").is_file():
        print(f"(no labelled data at {DATA}: synthetic signals only)")
        return out
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_cat: dict[str, list[dict]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r)
    per_cat = max(1, n_files // len(by_cat))
    for cat, cat_rows in sorted(by_cat.items()):
        pick = set(np.random.default_rng(1).choice(len(cat_rows), size=min(per_cat, len(cat_rows)),
                                                   replace=False).tolist())
        pick.add(int(np.argmax([float(r["duration_s"]) for r in cat_rows])))  # and the longest one
        for i in sorted(pick):
            r = cat_rows[i]
            y = read_audio(DATA / r["path"], sr=SR)[: 60 * SR]  # at most a minute each
            out.append((f"{cat}: {r['path']}", y))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default=None, help="git revision to compare with (default: see above)")
    parser.add_argument("--files", type=int, default=30, help="labelled files to use (spread over categories)")
    args = parser.parse_args()
    args.rev = args.rev or default_revision()
    print(f"comparing features.py at {args.rev} with the working tree")
    old = load_revision(args.rev)
    grid = make_grid(sr=SR)
    names = old.feature_names()
    added = current.feature_names()[len(names):]
    # Columns may be added after the older ones (models select theirs by name); those must not move.
    assert current.feature_names()[:len(names)] == names, "feature names or order changed"
    if added:
        print(f"new columns, not compared: {', '.join(added)}")
    worst_filter = 0.0
    for n_fft in (512, 1024):
        a = old.FrameAnalyzer(old.FeatureSpec(n_fft))
        b = current.FrameAnalyzer(current.FeatureSpec(n_fft))
        for bank in ("mel", "chroma"):
            diff = float(np.max(np.abs(getattr(a, bank).astype(np.float64) - getattr(b, bank))))
            worst_filter = max(worst_filter, diff)
            print(f"n_fft {n_fft}: {bank} filter bank max abs diff {diff:.2e}")
    sigs = signals(args.files)
    worst = np.zeros(len(names))
    worst_level = 0.0
    n_windows = 0
    t_old = t_new = 0.0
    for label, y in sigs:
        for n_fft in (512, 1024):
            t0 = time.perf_counter()
            xa = old.featurize(y, spec=old.FeatureSpec(n_fft), grid=grid)
            t1 = time.perf_counter()
            xb = current.featurize(y, spec=current.FeatureSpec(n_fft), grid=grid)
            t2 = time.perf_counter()
            t_old += t1 - t0
            t_new += t2 - t1
            assert xa.X.shape == xb.X[:, :len(names)].shape, (label, xa.X.shape, xb.X.shape)
            np.testing.assert_array_equal(xa.index, xb.index)
            d = np.abs(xa.X.astype(np.float64) - xb.X[:, :len(names)])
            worst = np.maximum(worst, d.max(axis=0, initial=0.0))
            worst_level = max(worst_level, float(np.max(np.abs(xa.level_db - xb.level_db), initial=0.0)))
            n_windows += len(xa.X)
    order = np.argsort(worst)[::-1][:8]
    print(f"{len(sigs)} signals, {n_windows} windows x {len(names)} features, n_fft 512 and 1024")
    print("largest differences: " + ", ".join(f"{names[i]} {worst[i]:.2e}" for i in order))
    print(f"max abs difference over all pooled features: {worst.max():.2e} (tolerance {FEATURE_TOL:g})")
    print(f"max abs difference of the window level (dBFS, silence floor): {worst_level:.2e}")
    print(f"featurize time: {args.rev} {t_old:.2f} s, working tree {t_new:.2f} s "
          f"(ratio {t_old / max(t_new, 1e-9):.2f}x)")
    ok = max(worst.max(), worst_level) < FEATURE_TOL and worst_filter < FILTER_TOL
    print("PARITY OK" if ok else "PARITY FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
