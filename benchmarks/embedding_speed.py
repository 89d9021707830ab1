"""Cost of speaker embeddings (numpy float32, one BLAS thread): seconds per 1000 windows, by batch size.

    python benchmarks/embedding_speed.py [--out reports/embedding_speed.json]

Times :meth:`SpeakerEncoder.embed_windows` on 10 minutes of dev speech
(LibriSpeech clips end to end) cut into the product's windows (2 s, 1 s
hop), with ``batch`` windows per call, and the mel front end alone. Both
CPU time of this process (what one core costs, insensitive to other jobs
on the machine) and wall time (what it took here, with whatever else ran)
are reported. The 10-minute file is then costed three ways: an embedding
for every window, and one for every 2nd or 4th window.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dramapic_subs.embedding import load_encoder  # noqa: E402
from dramapic_subs.media import read_audio  # noqa: E402
from dramapic_subs.train.tables import read_manifest  # noqa: E402
from dramapic_subs.windows import make_grid  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SR = 16000
MINUTES = 10


def _speech(data: Path, seconds: float) -> np.ndarray:
    rows = [r for r in read_manifest(data, "dev") if r["source"] == "librispeech_resemblyzer"]
    parts, total = [], 0
    for r in rows:
        y = read_audio(data / r["path"], sr=SR)
        parts.append(y)
        total += len(y)
        if total >= seconds * SR:
            break
    y = np.concatenate(parts)
    return np.tile(y, int(np.ceil(seconds * SR / len(y))))[: int(seconds * SR)]


def _time(fn) -> tuple[float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--batches", default="1,8,32,128")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # one core, as the pipeline's featurizer runs
    enc = load_encoder()
    y = _speech(args.data, MINUTES * 60)
    grid = make_grid(sr=SR)
    spans = np.array([grid.span(i, len(y)) for i in range(grid.n_cues(len(y)))])
    enc.embed_windows(y, spans[:8])  # warm-up
    result = {"windows": int(len(spans)), "audio_s": len(y) / SR, "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg(), "per_1000_windows": {}}
    cpu, wall = _time(lambda: [enc.span_mels(y, spans[i:i + 128]) for i in range(0, len(spans), 128)])
    result["mel_front_end_per_1000"] = {"cpu_s": cpu / len(spans) * 1000, "wall_s": wall / len(spans) * 1000}
    for b in (int(v) for v in args.batches.split(",")):
        n = min(len(spans), max(64, 4 * b))  # small batches are slow: time fewer windows
        cpu, wall = _time(lambda: [enc.embed_windows(y, spans[i:i + b]) for i in range(0, n, b)])
        result["per_1000_windows"][b] = {"cpu_s": cpu / n * 1000, "wall_s": wall / n * 1000, "windows_timed": n}
        print(f"batch {b:4d}: {cpu / n * 1000:6.1f} s CPU, {wall / n * 1000:6.1f} s wall per 1000 windows", flush=True)
    best = result["per_1000_windows"][max(result["per_1000_windows"])]
    result["ten_minute_file"] = {f"every_{k}": {"cpu_s": best["cpu_s"] * len(spans) / k / 1000,
                                                "wall_s": best["wall_s"] * len(spans) / k / 1000}
                                 for k in (1, 2, 4)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
