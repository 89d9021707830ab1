"""Silero VAD as a side-by-side peer for speech-vs-rest on the dev windows.

Silero VAD (MIT licence; ``pip install ".[bench]"``, its ONNX weights ship in
the wheel) gives one speech probability per 32 ms chunk at 16 kHz. A window
is called speech when the mean probability of the chunks inside it reaches
0.5, Silero's own default threshold; nothing is tuned on dev. The windows are
exactly the rows of the dev tables (same grid, same silent windows left out),
so both detectors are scored on the same windows. Both are timed on the same
decoded samples, one file after another on one process.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..representations import window_matrix
from ..media import find_ffmpeg, read_audio
from ..models import ModelBundle
from ..windows import make_grid
from .report import speech_vs_rest_scores
from .tables import SR, audible_windows

CHUNK = 512          # samples per Silero step at 16 kHz
THRESHOLD = 0.5      # Silero's default speech threshold


@dataclass
class PeerResult:
    """Speech-vs-rest scores of Silero and of our sound model on the same windows."""

    scores: dict           # name -> speech-vs-rest scores
    x_real_time: dict      # name -> audio seconds per processing second
    audio_seconds: float
    windows: int


def silero_available() -> bool:
    try:
        import silero_vad  # noqa: F401
    except ImportError:
        return False
    return True


Detector = Callable[[np.ndarray, list[tuple[int, int]]], np.ndarray]


def window_means(frame_proba: np.ndarray, spans: list[tuple[int, int]], *, frame: int) -> np.ndarray:
    """Mean of per-frame values whose frame centre lies in each ``[start, end)`` sample span."""
    centres = np.arange(len(frame_proba)) * frame + frame // 2
    out = np.zeros(len(spans))
    for k, (a, b) in enumerate(spans):
        inside = frame_proba[(centres >= a) & (centres < b)]
        if len(inside):
            out[k] = inside.mean()
    return out


def silero_detector() -> Detector:
    """Speech probability per window from Silero VAD's ONNX model (needs ``silero-vad``)."""
    import torch
    from silero_vad import load_silero_vad

    model = load_silero_vad(onnx=True)

    def detect(y: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
        chunks = model.audio_forward(torch.from_numpy(y.astype(np.float32)), sr=SR).numpy().ravel()
        return window_means(chunks, spans, frame=CHUNK)

    return detect


def compare(rows: list[dict], data_dir: Path, *, sound: ModelBundle, categories: np.ndarray,
            peer: Detector | None = None, log=print) -> PeerResult:
    """Run a peer detector (Silero VAD by default) and our sound-type model over the dev files.

    Parameters
    ----------
    rows : list of dict
        Dev manifest rows, in the order of the dev tables.
    categories : np.ndarray of str
        True category of each dev table row (to check the windows line up).
    peer : callable or None
        ``peer(y, spans) -> speech probability per span``; spans are sample
        ranges at 16 kHz.
    """
    peer = peer or silero_detector()
    ffmpeg = find_ffmpeg()
    grid = make_grid(sr=SR)
    speech_idx = list(sound.labels).index("speech")
    theirs, ours, seconds = [], [], {"silero": 0.0, "ours": 0.0}
    audio = 0.0
    for r in rows:
        y = read_audio(data_dir / r["path"], sr=SR, ffmpeg=ffmpeg)
        keep = audible_windows(y, grid)
        spans = [grid.span(i, len(y)) for i in np.flatnonzero(keep)]
        audio += len(y) / SR
        t0 = time.perf_counter()
        theirs.append(peer(y, spans) >= THRESHOLD)
        t1 = time.perf_counter()
        proba = sound.predict_proba(window_matrix(y, inputs=sound.inputs, grid=grid)[keep])
        t2 = time.perf_counter()
        ours.append(proba.argmax(axis=1) == speech_idx)
        seconds["silero"] += t1 - t0
        seconds["ours"] += t2 - t1
    called = {"silero": np.concatenate(theirs), "ours": np.concatenate(ours)}
    if len(called["silero"]) != len(categories):
        raise RuntimeError(f"peer windows ({len(called['silero'])}) do not line up with the dev table "
                           f"({len(categories)})")
    scores = {k: speech_vs_rest_scores(categories, v) for k, v in called.items()}
    speed = {k: audio / max(s, 1e-9) for k, s in seconds.items()}
    for k in scores:
        log(f"  peer {k:6s} speech-vs-rest {scores[k]['speech_vs_rest_bacc']:.3f}  "
            f"music/song->speech {scores[k]['music_song_called_speech']:.3f}  {speed[k]:.0f}x real time")
    return PeerResult(scores, speed, audio, len(categories))
