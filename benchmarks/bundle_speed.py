"""Model bundles: load time in a fresh process, predict time, and parity with the pickled originals.

    python benchmarks/bundle_speed.py                        # the npz bundles in models/
    python benchmarks/bundle_speed.py --joblib /tmp/old      # also the .joblib bundles of an older tree
                                                             # (git archive 1835e94 models | tar -x -C /tmp/old)

Feature rows are real: dev clips of ../shared/data featurized by the product
(n_fft of each model). Every timing is the best of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LOAD_NPZ = ("import time; t = time.perf_counter(); from dramapic_subs.pipeline import load_models; "
            "from pathlib import Path; t1 = time.perf_counter(); load_models(Path({d!r})); print(t1 - t, time.perf_counter() - t1)")
LOAD_JOBLIB = ("import time; t = time.perf_counter(); import joblib, sklearn, numpy; t1 = time.perf_counter(); "
               "[joblib.load(f'{d}/{{n}}.joblib') for n in ('sound_type', 'gender')]; "
               "print(t1 - t, time.perf_counter() - t1)")


def best_of(code: str, repeat: int) -> tuple[float, float]:
    """(imports, loading) seconds, best of ``repeat`` fresh interpreters."""
    runs = [tuple(map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True, cwd=ROOT).stdout.split())) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def dev_features(data: Path, bundle, files: int) -> np.ndarray:
    """Rows of every input the bundle takes (spectral at its n_fft and hop, Silero, speaker embedding)."""
    from dramapic_subs.media import find_ffmpeg, read_audio
    from dramapic_subs.representations import window_matrix
    from dramapic_subs.train.tables import read_manifest
    from dramapic_subs.windows import make_grid

    rows = read_manifest(data, "dev")
    picked = rows[:: max(1, len(rows) // files)][:files]
    ffmpeg, grid = find_ffmpeg(), make_grid(sr=bundle.spec.sr)
    return np.vstack([window_matrix(read_audio(data / r["path"], sr=bundle.spec.sr, ffmpeg=ffmpeg),
                                    inputs=bundle.inputs, grid=grid) for r in picked])


def predict_ms(model, X: np.ndarray, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        model.predict_proba(X)
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--joblib", type=Path, help="folder with the pickled sound_type/gender.joblib to compare")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("DRAMAPIC_DATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--files", type=int, default=40, help="dev files featurized (spread over the manifest)")
    ap.add_argument("--rows", type=int, default=600, help="rows per predict timing")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from dramapic_subs.models import load_bundle

    print(f"load average {os.getloadavg()[0]:.1f}")
    imp, load = best_of(LOAD_NPZ.format(d=str(args.models)), args.repeat)
    print(f"npz: import pipeline {imp:.3f} s, load both bundles {load:.3f} s")
    if args.joblib:
        imp, load = best_of(LOAD_JOBLIB.format(d=str(args.joblib)), args.repeat)
        print(f"joblib: import joblib+sklearn {imp:.3f} s, unpickle both {load:.3f} s")
    for name in ("sound_type", "gender"):
        bundle = load_bundle(name, directory=args.models)
        X = dev_features(args.data, bundle, args.files)
        rows = X[np.resize(np.arange(len(X)), args.rows)]
        line = f"{name}: {len(X)} dev windows; predict {args.rows} rows: npz {predict_ms(bundle, rows, args.repeat):.1f} ms"
        if args.joblib:
            import joblib
            from threadpoolctl import threadpool_limits

            est = joblib.load(args.joblib / f"{name}.joblib")
            with threadpool_limits(limits=1, user_api="openmp"):  # as the old ModelBundle predicted
                line += f", sklearn {predict_ms(est, rows, args.repeat):.1f} ms"
                old = est.predict_proba(X)[:, [list(est.classes_).index(lab) for lab in bundle.labels]]
            line += f"; max |npz - sklearn| {np.max(np.abs(bundle.predict_proba(X) - old)):.2e}"
            line += f", argmax agree {np.mean(bundle.predict_proba(X).argmax(1) == old.argmax(1)):.4f}"
        print(line)


if __name__ == "__main__":
    main()
