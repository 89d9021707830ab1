"""Feature speed: CPU seconds of ``features.py`` at a git revision against the working tree.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/feature_speed.py [--rev REV] [--minutes 10] [--repeat 5] [--push-s 30]

Featurizes the same signal (the analysis benchmark's soundtrack, decoded from
AAC, ``--minutes`` long) with both versions, one thread, interleaved, and
keeps the fastest of ``--repeat`` runs per stage (the signal pushed in
``--push-s`` blocks as the pipeline decodes it, or whole): "frames" (STFT and frame
features, ``FrameAnalyzer.__call__``) and "pooling" (``StreamFeaturizer._emit``),
per n_fft. CPU time (``time.process_time``) rather than wall time, as the
machine is shared. Also prints the largest difference of the frame-level
features (every column, before pooling) and of the pooled features, so a
speed-up that changes the numbers shows at once; ``feature_parity.py`` is the
check on real files.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _media import make_input  # noqa: E402
from feature_parity import default_revision, load_revision  # noqa: E402

from dramapic_subs import features as current  # noqa: E402
from dramapic_subs.media import find_ffmpeg, read_audio  # noqa: E402
from dramapic_subs.windows import make_grid  # noqa: E402

SR = 16000


def timed_run(module, y: np.ndarray, n_fft: int,
              push: int | None = None) -> tuple[dict[str, float], list[np.ndarray], np.ndarray]:
    """Featurize ``y``; CPU seconds per stage, the frame feature blocks and the pooled matrix."""
    times: dict[str, float] = defaultdict(float)
    blocks: list[np.ndarray] = []
    call, emit = module.FrameAnalyzer.__call__, module.StreamFeaturizer._emit

    def frames(self, *a, **k):
        t = time.process_time()
        out = call(self, *a, **k)
        times["frames"] += time.process_time() - t
        blocks.append(out[0])
        return out

    def pooling(self, *a, **k):
        t = time.process_time()
        try:
            return emit(self, *a, **k)
        finally:
            times["pooling"] += time.process_time() - t

    module.FrameAnalyzer.__call__, module.StreamFeaturizer._emit = frames, pooling
    try:
        if push is None:
            out = module.featurize(y, spec=module.FeatureSpec(n_fft), grid=make_grid(sr=SR))
        else:
            fz = module.StreamFeaturizer(module.FeatureSpec(n_fft), make_grid(sr=SR))
            parts = [fz.push(y[i:i + push]) for i in range(0, len(y), push)]
            out = module.WindowFeatures.concat(parts + [fz.finish()])
    finally:
        module.FrameAnalyzer.__call__, module.StreamFeaturizer._emit = call, emit
    return dict(times), blocks, out.X


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default=None, help="git revision to compare with (default: as feature_parity.py)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--push-s", type=float, default=None, help="push blocks of this many seconds (default: whole)")
    args = parser.parse_args()
    rev = args.rev or default_revision()
    old = load_revision(rev)
    with tempfile.TemporaryDirectory() as tmp:
        y = read_audio(make_input(find_ffmpeg(), args.minutes, Path(tmp), video=False), sr=SR)
    push = None if args.push_s is None else int(args.push_s * SR)
    print(f"{len(y) / SR / 60:.1f} min of audio" + (f" in {args.push_s:g} s pushes" if push else "")
          + f"; {rev} against the working tree; "
          f"best of {args.repeat}, CPU seconds, one thread")
    for module in (old, current):  # warm-up: imports, plans, first allocations
        timed_run(module, y[: 10 * SR], 512)
    for n_fft in (512, 1024):
        best = {name: defaultdict(lambda: np.inf) for name in ("rev", "tree")}
        for _ in range(args.repeat):
            for name, module in (("rev", old), ("tree", current)):
                times, blocks, X = timed_run(module, y, n_fft, push)
                for stage, seconds in times.items():
                    best[name][stage] = min(best[name][stage], seconds)
                if name == "rev":
                    ref_frames, ref_X = np.vstack(blocks), X
                else:
                    new_frames = np.vstack(blocks)
        frame_diff = np.abs(ref_frames.astype(np.float64) - new_frames).max(axis=0)
        worst = np.argsort(frame_diff)[::-1][:4]
        print(f"n_fft {n_fft}:")
        for stage in ("frames", "pooling"):
            a, b = best["rev"][stage], best["tree"][stage]
            print(f"  {stage:8s} {a:6.3f} s -> {b:6.3f} s  ({a / b:.2f}x)")
        print(f"  frame features: {np.count_nonzero(frame_diff)} of {len(frame_diff)} columns differ; largest "
              + ", ".join(f"{old._FRAME_COLS[i]} {frame_diff[i]:.1e}" for i in worst))
        print(f"  pooled features: max abs diff {np.abs(ref_X.astype(np.float64) - X).max():.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
