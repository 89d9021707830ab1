"""Silero VAD started afresh part-way through a file: how long the difference lasts, and what it does to the sound model.

    python benchmarks/vad_restarts.py [--split train] [--programmes 4] [--minutes 10]

Batching the LSTM steps of a block would mean running segments side by
side, each from a zero state after some chunks of warm-up. This measures
whether that can match the product (one state carried over the whole
file), on programmes of real clips from ``../shared/data`` (random clips of
one split, about half speech, with 0-1.5 s of silence between them):

* decay: the largest and mean difference of the chunk probability at a
  given number of chunks after a restart from a zero state;
* variants: restarts every L chunks after W chunks of warm-up, at every
  30 s block, and at the start of every clip (what training sees: one fresh
  state per clip); for each, the pooled VAD features' and the sound model's
  differences from the product, the windows whose most likely label
  changes, and the accuracy on windows lying inside a labelled clip.

Use ``--split train`` to choose anything; ``--split dev`` only to report.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import sys
from pathlib import Path

import numpy as np

from dramapic_subs import vad
from dramapic_subs.features import SILENCE_FLOOR_DB
from dramapic_subs.media import read_audio
from dramapic_subs.models import SOUND_TYPE, default_models_dir, smooth_probabilities
from dramapic_subs.pipeline import load_models
from dramapic_subs.windows import make_grid

SR = vad.SR
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MIX = {"speech": 0.5, "song": 0.15, "music": 0.15, "noise": 0.1, "nature": 0.1}
BLOCK = 30 * SR // vad.CHUNK  # chunks per 30 s decode block
VARIANTS = {"every 128 chunks, warm-up 64": (128, 64), "every 256 chunks, warm-up 128": (256, 128),
            "every 30 s, warm-up 30 s": (BLOCK, BLOCK), "every 30 s block, no warm-up": (BLOCK, 0),
            "every clip (as training)": (None, 0)}


def programme(rows: list[dict], *, seconds: float, seed: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """Random clips (at most 60 s of each) with short silences between; the clips' sample spans and categories."""
    rng = np.random.default_rng(seed)
    by = {c: [r for r in rows if r["category"] == c] for c in MIX}
    cats, weights = list(MIX), np.array(list(MIX.values()))
    parts, clips, n = [], [], 0
    while n < seconds * SR:
        cat = cats[rng.choice(len(cats), p=weights / weights.sum())]
        y = read_audio(DATA / by[cat][rng.integers(len(by[cat]))]["path"], sr=SR)
        if len(y) > 60 * SR:
            start = rng.integers(len(y) - 60 * SR)
            y = y[start:start + 60 * SR]
        gap = np.zeros(int(rng.uniform(0, 1.5) * SR), np.float32)
        clips.append((n, n + len(y), cat))
        parts += [y, gap]
        n += len(y) + len(gap)
    return np.concatenate(parts)[:int(seconds * SR)], clips


def input_gates(net: vad._Net, y: np.ndarray) -> np.ndarray:
    """The LSTM's input gates of every chunk of a whole signal, as :class:`vad.ChunkRunner` feeds them."""
    n = -(-len(y) // vad.CHUNK)
    padded = np.concatenate([np.zeros(vad.CONTEXT, np.float32), y, np.zeros(n * vad.CHUNK - len(y), np.float32)])
    chunks = np.lib.stride_tricks.sliding_window_view(padded, vad.CHUNK + vad.CONTEXT)[::vad.CHUNK]
    return net.encode(chunks)


def restarted(net: vad._Net, gates: np.ndarray, restarts: np.ndarray, *, warmup: int) -> np.ndarray:
    """Chunk probabilities when the state restarts from zero ``warmup`` chunks before each restart point."""
    zero = np.zeros(vad.HIDDEN, np.float32)
    bounds = sorted({0, len(gates), *(int(r) for r in restarts if 0 < r < len(gates))})
    p = np.empty(len(gates), np.float32)
    for a, b in itertools.pairwise(bounds):
        s = max(a - warmup, 0)
        p[a:b] = net.run(gates[s:b], zero, zero)[0][a - s:]
    return p


def decay(net: vad._Net, gates: np.ndarray, *, horizon: int, every: int = 397) -> np.ndarray:
    """|restarted - carried| chunk probability at each lag (rows) after restarts every ``every`` chunks (columns)."""
    zero = np.zeros(vad.HIDDEN, np.float32)
    starts = np.arange(every, len(gates) - horizon, every)
    carried = net.run(gates, zero, zero)[0]
    return np.stack([np.abs(net.run(gates[s:s + horizon], zero, zero)[0] - carried[s:s + horizon])
                     for s in starts], axis=1)


def pooled(p: np.ndarray, grid, n_samples: int) -> np.ndarray:
    """Pooled VAD features of every window, as :class:`vad.VadStream` at the end of a stream."""
    spans = [grid.span(i, n_samples) for i in range(grid.n_cues(n_samples))]
    return vad.pool_spans(p, np.array([(a // vad.CHUNK, -(-b // vad.CHUNK)) for a, b in spans]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="train", choices=["train", "dev"])
    parser.add_argument("--programmes", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (DATA / "manifest.csv").is_file():
        sys.exit(f"labelled data not found at {DATA}")
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == args.split]
    net = vad._Net(vad.SileroWeights.load(default_models_dir() / "silero_vad.npz"))
    model = next(m for m in load_models() if m.name == SOUND_TYPE)
    spectral = model.inputs[0]
    grid = make_grid(sr=SR)
    lags, errors = [0, 32, 128, 512, 1000, 2000, 3000, 4000 - 1], []
    stats = {k: {"dX": [], "dP": [], "flips": 0, "hits": []} for k in ["carried (product)", *VARIANTS]}
    for k in range(args.programmes):
        y, clips = programme(rows, seconds=args.minutes * 60, seed=args.seed + k)
        stream = spectral.stream(grid)
        parts = [stream.push(y), stream.finish()]
        S = type(parts[0]).concat(parts)
        valid = S.level_db >= SILENCE_FLOOR_DB
        truth = np.full(len(valid), -1)
        for i in range(len(truth)):
            a, b = grid.span(i, len(y))
            inside = [c for s, e, c in clips if s <= a and b <= e]
            truth[i] = model.labels.index(inside[0]) if inside else -1
        labelled = valid & (truth >= 0)
        gates = input_gates(net, y)
        if len(gates) > lags[-1] + 1:
            errors.append(decay(net, gates, horizon=lags[-1] + 1)[lags])
        ref_X = ref_P = None
        for name, st in stats.items():
            every, warmup = VARIANTS.get(name, (len(gates), 0))
            restarts = np.array([s // vad.CHUNK for s, _, _ in clips]) if every is None else np.arange(every, len(gates), every)
            X = pooled(restarted(net, gates, restarts, warmup=warmup), grid, len(y))
            P = smooth_probabilities(model.predict_windows(np.hstack([S.X, X]), silent=~valid),
                                     width=model.smooth, valid=valid)
            if ref_X is None:
                ref_X, ref_P = X, P
            st["dX"].append(np.abs(X - ref_X)[valid])
            st["dP"].append(np.abs(P - ref_P)[valid].max(axis=1))
            st["flips"] += int((P[valid].argmax(1) != ref_P[valid].argmax(1)).sum())
            st["hits"].append(P[labelled].argmax(1) == truth[labelled])
    if errors:
        e = np.hstack(errors)
        print(f"Chunk probability after a restart from zero state ({e.shape[1]} restarts, {args.split}):")
        for lag, row in zip(lags, e):
            print(f"  {lag:5d} chunks ({lag * vad.CHUNK / SR:6.1f} s): max {row.max():.2e}, mean {row.mean():.1e}, "
                  f"share > 1e-3 {np.mean(row > 1e-3):.2f}")
    print(f"\nAgainst the product, {args.programmes} x {args.minutes:g} min {args.split} programmes; pooled VAD features "
          f"({', '.join(vad.VAD_FEATURES)}) max | p99; sound model probabilities max | p99:")
    for name, st in stats.items():
        dX, dP, hits = np.vstack(st["dX"]), np.concatenate(st["dP"]), np.concatenate(st["hits"])
        print(f"  {name:30s} VAD {' '.join(f'{v:.2f}' for v in dX.max(0))} | "
              f"{' '.join(f'{v:.3f}' for v in np.percentile(dX, 99, axis=0))}; proba {dP.max():.3f} | "
              f"{np.percentile(dP, 99):.3f}; argmax changes {st['flips']}/{len(dP)}; "
              f"accuracy {hits.mean():.3f} on {len(hits)} windows inside clips")


if __name__ == "__main__":
    main()
