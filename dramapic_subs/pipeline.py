"""The thin pipeline: media in -> windows -> features -> models -> captions / burn out.

Each stage lives in its own module; this one only wires them in order.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Iterator

import numpy as np

from . import burn as burner
from . import captions
from .errors import DramapicError, MediaError, ParameterError
from .features import SILENCE_FLOOR_DB, StreamFeaturizer, WindowFeatures
from .media import MediaInfo, find_ffmpeg, iter_audio, probe
from .models import GENDER, SOUND_TYPE, ModelBundle, load_bundle, smooth_probabilities
from .progress import Progress
from .result import Analysis, ModelOutput
from .windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S, make_grid

SR = 16000
BLOCK_S = 30.0  # decode block: bounds memory whatever the file's length
SHORT_DECODE_S = 2.0  # decoded audio this much shorter than the container says: warn


@dataclass(frozen=True)
class Options:
    """What the user asked for (the CLI's flags)."""

    window_s: float = DEFAULT_WINDOW_S
    hop_s: float = DEFAULT_HOP_S
    formats: tuple[str, ...] = ("srt",)
    burn: bool = False
    out_dir: Path | None = None
    lang: str = "en"
    overwrite: bool = False
    ffmpeg: str | None = None
    models_dir: Path | None = None


def load_models(models_dir: Path | None = None) -> list[ModelBundle]:
    """The sound-type and gender bundles, hash-checked."""
    return [load_bundle(SOUND_TYPE, directory=models_dir), load_bundle(GENDER, directory=models_dir)]


def analyze(path: str | os.PathLike, *, models: list[ModelBundle], window_s: float = DEFAULT_WINDOW_S,
            hop_s: float = DEFAULT_HOP_S, ffmpeg: str | None = None, progress: Progress | None = None,
            info: MediaInfo | None = None) -> Analysis:
    """Classify every window of a file's soundtrack.

    Parameters
    ----------
    path : path
        Any media file ffmpeg reads, with an audio stream.
    models : list of ModelBundle
        Each is fed features at its own n_fft; one STFT per distinct n_fft.
    window_s, hop_s : float
        Window and hop (cue) lengths in seconds.

    Returns
    -------
    Analysis
    """
    ffmpeg = find_ffmpeg(ffmpeg)
    path = Path(path)
    info = info or probe(path, ffmpeg=ffmpeg)
    if not info.has_audio:
        raise MediaError(f"{path}: no audio stream to analyse")
    grid = make_grid(sr=SR, window_s=window_s, hop_s=hop_s)
    featurizers = {m.spec: StreamFeaturizer(m.spec, grid) for m in models}
    parts: dict = {spec: [] for spec in featurizers}
    progress = progress or Progress(quiet=True)
    task = progress.task(f"analysing {path.name}", total=info.duration_s or 1.0)
    n = 0
    # One thread per n_fft: the FFTs and array maths release the GIL, so the
    # two analyses share the cores while ffmpeg decodes in its own process.
    with ThreadPoolExecutor(max_workers=len(featurizers)) as pool:
        for block in _prefetch(iter_audio(path, ffmpeg=ffmpeg, sr=SR, block_s=BLOCK_S,
                                             on_warning=progress.warn)):
            done = {spec: pool.submit(fz.push, block) for spec, fz in featurizers.items()}
            for spec, future in done.items():
                parts[spec].append(future.result())
            n += len(block)
            progress.update(task, n / SR)
    if n == 0:
        raise MediaError(f"{path}: the audio stream is empty (zero length)")
    if info.duration_s - n / SR > SHORT_DECODE_S:
        progress.warn(f"{path}: only {n / SR:.1f} s of {info.duration_s:.1f} s decoded (truncated file?); "
                      "captions cover what was decoded")
    feats = {spec: WindowFeatures.concat(parts[spec] + [fz.finish()]) for spec, fz in featurizers.items()}
    progress.update(task, info.duration_s or 1.0)
    level = next(iter(feats.values())).level_db
    silent = level < SILENCE_FLOOR_DB
    outputs = [_predict(m, feats[m.spec].X, silent) for m in models]
    start, end = grid.cue_times(n)
    return Analysis(source=path, duration_s=n / SR, window_s=grid.window_s, hop_s=grid.hop_s,
                    start_s=start, end_s=end, level_db=level, silent=silent, models=outputs)


def _prefetch(blocks: Iterator[np.ndarray], depth: int = 2) -> Iterator[np.ndarray]:
    """Read the next decoded blocks in a thread, so ffmpeg decodes while we analyse.

    Without it ffmpeg stalls on a full pipe during every block's analysis.
    """
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def reader() -> None:
        try:
            for block in blocks:
                if stop.is_set():
                    break
                queue.put(block)
            queue.put(end)
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                queue.get_nowait()
            except Empty:
                thread.join(0.05)
        blocks.close()


def _predict(model: ModelBundle, X: np.ndarray, silent: np.ndarray) -> ModelOutput:
    proba = np.full((len(X), len(model.labels)), np.nan)
    proba[~silent] = model.predict_proba(X[~silent])
    proba = smooth_probabilities(proba, width=model.smooth, valid=~silent)
    return ModelOutput(model.name, model.version, model.labels, model.spec.n_fft, model.spec.hop,
                       model.smooth, proba)


def output_paths(src: Path, opts: Options) -> dict[str, Path]:
    """Where each output of ``src`` goes, keyed by format (and ``burn``)."""
    folder = opts.out_dir or src.parent
    paths = {fmt: folder / f"{src.stem}.{fmt}" for fmt in opts.formats}
    if opts.burn:
        paths["burn"] = folder / f"{src.stem}.subtitled.mp4"
    return paths


def check_outputs(src: Path, paths: dict[str, Path], opts: Options) -> None:
    """Refuse before any work: unwritable folder, existing outputs, output onto the input."""
    folder = next(iter(paths.values())).parent
    if not folder.is_dir():
        raise ParameterError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ParameterError(f"output folder is not writable: {folder}")
    for p in paths.values():
        if p.exists() and p.resolve() == src.resolve():
            raise ParameterError(f"{p}: output would overwrite the input")
        if p.exists() and not opts.overwrite:
            raise ParameterError(f"{p} exists (use --overwrite to replace it)")


def process(src: Path, opts: Options, models: list[ModelBundle], progress: Progress) -> tuple[Analysis, list[Path]]:
    """Analyse one input and write every requested output; return what was written."""
    paths = output_paths(src, opts)
    check_outputs(src, paths, opts)
    ffmpeg = find_ffmpeg(opts.ffmpeg)
    info = probe(src, ffmpeg=ffmpeg)
    analysis = analyze(src, models=models, window_s=opts.window_s, hop_s=opts.hop_s, ffmpeg=ffmpeg,
                       progress=progress, info=info)
    # Each output is written atomically, so an interrupted burn leaves the
    # finished captions and no partial video.
    written = [captions.write(analysis, fmt, paths[fmt], lang=opts.lang) for fmt in opts.formats]
    if opts.burn:
        written.append(burner.burn(src, analysis, paths["burn"], lang=opts.lang, ffmpeg=ffmpeg,
                                   info=info, progress=progress))
    return analysis, written


__all__ = ["Options", "analyze", "process", "load_models", "output_paths", "DramapicError"]
