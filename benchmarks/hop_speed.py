"""Spectral stream CPU against the frame hop: each n_fft at n_fft / 4 and at n_fft / 2 (issue #11).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/hop_speed.py [--minutes 10] [--repeat 5] [--push-s 30]

Streams the same signal (the analysis benchmark's soundtrack, decoded from
AAC) through a ``StreamFeaturizer`` per setting, pushed in blocks as the
pipeline decodes it, settings interleaved, and keeps the fewest CPU seconds
(``time.process_time``: the machine is shared) of ``--repeat`` runs, split
into frame analysis (``FrameAnalyzer.__call__``) and the rest (pooling, buffers).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _media import make_input  # noqa: E402

from dramapic_subs import features as F  # noqa: E402
from dramapic_subs.media import find_ffmpeg, read_audio  # noqa: E402
from dramapic_subs.windows import make_grid  # noqa: E402

SR = 16000
SETTINGS = [F.FeatureSpec(512), F.FeatureSpec(512, hop=256), F.FeatureSpec(1024), F.FeatureSpec(1024, hop=512)]


def stream_cpu(y: np.ndarray, *, spec: F.FeatureSpec, push: int) -> tuple[float, float, int]:
    """CPU seconds of the whole stream and of its frame analysis alone, and the frames analysed."""
    frames, seen = [0.0], [0]
    real = F.FrameAnalyzer.__call__

    def timed(self, block, prev):
        t = time.process_time()
        try:
            return real(self, block, prev)
        finally:
            frames[0] += time.process_time() - t
            seen[0] += len(block)

    F.FrameAnalyzer.__call__ = timed
    try:
        t0 = time.process_time()
        fz = F.StreamFeaturizer(spec, make_grid(sr=SR))
        for i in range(0, len(y), push):
            fz.push(y[i:i + push])
        fz.finish()
        total = time.process_time() - t0
    finally:
        F.FrameAnalyzer.__call__ = real
    return total, frames[0], seen[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--push-s", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        y = read_audio(make_input(find_ffmpeg(), args.minutes, Path(tmp), video=False), sr=SR)
    push = int(args.push_s * SR)
    stream_cpu(y[: 10 * SR], spec=SETTINGS[0], push=push)  # warm-up: imports, FFT plans
    best = {spec: (np.inf, np.inf, 0) for spec in SETTINGS}
    for _ in range(args.repeat):  # interleaved: a busy spell of the machine hits every setting alike
        for spec in SETTINGS:
            run = stream_cpu(y, spec=spec, push=push)
            best[spec] = min(best[spec], run)
    print(f"{len(y) / SR / 60:.1f} min of audio in {args.push_s:g} s pushes, best of {args.repeat}, CPU seconds, "
          f"one thread; load average {os.getloadavg()[0]:.1f}")
    print("| n_fft | hop | frames | stream CPU | of which frame analysis |")
    print("|---|---|---|---|---|")
    for spec, (total, frames, count) in best.items():
        print(f"| {spec.n_fft} | {spec.hop} | {count} | {total:.3f} s | {frames:.3f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
