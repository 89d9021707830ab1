"""The thin pipeline: media in -> windows -> features -> models -> captions / burn out.

Each stage lives in its own module; this one only wires them in order.
"""
from __future__ import annotations

import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue
from typing import Iterator

import numpy as np

from . import burn as burner
from . import captions, index, plot, review
from .errors import DramapicError, MediaError, ParameterError
from .features import SILENCE_FLOOR_DB
from .media import MediaInfo, find_ffmpeg, iter_audio, probe, thumbnail
from .models import GENDER, SOUND_TYPE, ModelBundle, load_bundle
from .placement import Placement
from .progress import Progress
from .representations import shared_inputs
from .result import Analysis, ModelOutput
from .summary import Summary, summarize
from .turns import Turn, TurnModel, find_turns, make_turns
from .voice import VoiceGate, sound_activity, voice_likely
from .windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S, make_grid
from .workers import ChildStreams, worth_it

SR = 16000
BLOCK_S = 30.0  # decode block: bounds memory whatever the file's length
SHORT_DECODE_S = 2.0  # decoded audio this much shorter than the container says: warn
THUMB_WIDTH = 240  # pixels; the review index shows it at half that, sharp on high-density screens


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
    plot: bool = False
    html: bool = False
    embed: bool = False
    placement: Placement = Placement()


def load_models(models_dir: Path | None = None) -> list[ModelBundle]:
    """The sound-type and gender bundles, hash-checked."""
    return [load_bundle(SOUND_TYPE, directory=models_dir), load_bundle(GENDER, directory=models_dir)]


def analyze(path: str | os.PathLike, *, models: list[ModelBundle], window_s: float = DEFAULT_WINDOW_S,
            hop_s: float = DEFAULT_HOP_S, ffmpeg: str | None = None, progress: Progress | None = None,
            info: MediaInfo | None = None, processes: bool | None = None) -> Analysis:
    """Classify every window of a file's soundtrack.

    Parameters
    ----------
    path : path
        Any media file ffmpeg reads, with an audio stream.
    models : list of ModelBundle
        Each is fed features at its own n_fft; one STFT per distinct n_fft.
    window_s, hop_s : float
        Window and hop (cue) lengths in seconds.
    processes : bool, optional
        Run the spectral streams in child processes (one core each); default
        when it pays: files of two minutes or more, on two cores or more
        (:func:`dramapic_subs.workers.worth_it`). The rows are the same either way.

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
    # One stream per distinct input (one STFT per n_fft, one VAD run), however many models share it.
    reps = shared_inputs(rep for m in models for rep in m.inputs)
    progress = progress or Progress(quiet=True)
    gate = _voice_gate(reps, models)
    feats, n, warnings = _stream_pass(path, reps, models, grid, ffmpeg=ffmpeg, progress=progress,
                                      total_s=info.duration_s, gate=gate,
                                      processes=worth_it(info.duration_s) if processes is None else processes)
    if n == 0:
        raise MediaError(f"{path}: the audio stream is empty (zero length)")
    for message in warnings:
        progress.warn(message)
    if not warnings and info.duration_s - n / SR > SHORT_DECODE_S:  # one warning per file is enough
        progress.warn(f"{path}: only {n / SR:.1f} s of {info.duration_s:.1f} s decoded (truncated file?); "
                      "captions cover what was decoded")
    level = feats[_level_key(models)].level_db
    silent = level < SILENCE_FLOOR_DB
    X = {m.name: np.hstack([rep.select(feats[rep.key].X) for rep in m.inputs]) for m in models}
    # The voice gate has already predicted the sound model on every window: not again.
    known = {SOUND_TYPE: gate.predicted()} if gate is not None else {}
    outputs = {m.name: _predict(m, X[m.name], silent, raw=known.get(m.name)) for m in models}
    ordered = [outputs[m.name] for m in models]
    start, end = grid.cue_times(n)
    sound = next((m for m in models if m.name == SOUND_TYPE), None)
    activity = sound_activity(sound, {key: f.X for key, f in feats.items()}) if sound is not None else None
    return Analysis(source=path, duration_s=n / SR, window_s=grid.window_s, hop_s=grid.hop_s,
                    start_s=start, end_s=end, level_db=level, silent=silent, models=ordered,
                    turns=_turns(models, ordered, X, silent, start, end, activity), activity=activity)


def _level_key(models: list[ModelBundle]) -> tuple:
    """The input whose rows carry each window's level: the first model's first (spectral) input."""
    return models[0].inputs[0].key


def _voice_gate(reps: dict, models: list[ModelBundle]) -> VoiceGate | None:
    """The gate that tells gated inputs (the speaker encoder) where a voice is likely; None without them."""
    if not any(getattr(rep, "gated", False) for rep in reps.values()):
        return None
    return VoiceGate(next((m for m in models if m.name == SOUND_TYPE), None), level_key=_level_key(models))


def _stream_pass(path: Path, reps: dict, models: list[ModelBundle], grid, *, ffmpeg: str, progress: Progress,
                 total_s: float, processes: bool, gate: VoiceGate | None = None) -> tuple[dict, int, list[str]]:
    """Decode the file once and feed every block to every input's stream; their rows per window, samples,
    warnings.

    Gated inputs (the speaker encoder) are told with each block which
    windows the sound model has found voiced so far; each works on block k
    while the other inputs take block k + 1. ``gate`` decides for them (the
    caller may read its predictions afterwards); None: one is made where an
    input is gated. With ``processes``, the inputs that ask for it
    (``own_process``) run in child processes.
    """
    with ChildStreams(enabled=processes, block_samples=int(BLOCK_S * SR)) as children:
        # The children are forked here, before the prefetch reader and the pool start any thread.
        plain = {key: children.stream(rep, grid) for key, rep in reps.items() if not getattr(rep, "gated", False)}
        gated = {key: rep.stream(grid, gated=True) for key, rep in reps.items() if getattr(rep, "gated", False)}
        if gate is None:
            gate = _voice_gate(reps, models)
        parts: dict = {key: [] for key in reps}
        running: dict = {}
        task = progress.task(f"analysing {path.name}", total=total_s or 1.0)
        n = 0
        warnings: list[str] = []
        # One thread per input: a thread whose stream runs in a child waits on
        # its pipe without the GIL, the in-process streams' FFTs and array maths
        # release it in part, and ffmpeg decodes in its own process.
        with ThreadPoolExecutor(max_workers=max(1, len(reps))) as pool:
            blocks = _prefetch(iter_audio(path, ffmpeg=ffmpeg, sr=SR, block_s=BLOCK_S, on_warning=warnings.append))
            for block in children.fed_ahead(blocks):
                done = {key: pool.submit(st.push, block) for key, st in plain.items()}
                rows = {key: future.result() for key, future in done.items()}
                wanted = gate.add(rows) if gate else None
                for key, st in gated.items():
                    if key in running:  # a stream takes one block at a time
                        parts[key].append(running.pop(key).result())
                    running[key] = pool.submit(st.push, block, wanted)
                for key, r in rows.items():
                    parts[key].append(r)
                n += len(block)
                progress.update(task, n / SR)
            rows = {key: st.finish() for key, st in plain.items()}
            for key, r in rows.items():
                parts[key].append(r)
            wanted = gate.add(rows, final=True) if gate else None
            for key, st in gated.items():
                if key in running:
                    parts[key].append(running.pop(key).result())
                parts[key].append(st.finish(wanted))
    progress.update(task, total_s or 1.0)
    return {key: type(p[-1]).concat(p) for key, p in parts.items()}, n, warnings


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


def _predict(model: ModelBundle, X: np.ndarray, silent: np.ndarray, *, raw: np.ndarray | None = None) -> ModelOutput:
    """``model``'s smoothed output on the windows of ``X``; ``raw``: its unsmoothed probabilities, if
    already predicted (one row per window)."""
    if raw is None or len(raw) != len(X):
        raw = model.predict_windows(X, silent=silent)
    proba = model.smooth_windows(raw, X, silent=silent)
    return ModelOutput(model.name, model.version, model.labels, model.spec.n_fft, model.spec.hop,
                       model.smooth, proba)


def _turns(models: list[ModelBundle], outputs: list[ModelOutput], X: dict[str, np.ndarray], silent: np.ndarray,
           start: np.ndarray, end: np.ndarray, activity: np.ndarray | None) -> list[Turn]:
    """Speech turns over the windows where a voice is likely, with the gender model's per-turn answer."""
    by_name = {m.name: (m, out) for m, out in zip(models, outputs)}
    if SOUND_TYPE not in by_name or GENDER not in by_name:
        return []
    sound = by_name[SOUND_TYPE][1]
    gender, gender_out = by_name[GENDER]
    card = gender.meta.get("turns")
    model = TurnModel.from_card(card, gender.feature_names) if card else None
    spans = find_turns(voice_likely(sound, silent, activity=activity), X[GENDER], model=model,
                       gender_proba=gender_out.proba)
    return make_turns(spans, gender_out.proba, gender_out.labels, start, end)


# Output name suffixes, keyed by what makes them; caption formats use their own.
SUFFIXES = {"burn": ".subtitled.mp4", "embed": ".captioned.mp4", "plot": ".timeline.png", "html": ".review.html"}


def output_paths(src: Path, opts: Options) -> dict[str, Path]:
    """Where each output of ``src`` goes, keyed by format or by ``burn``/``embed``/``plot``/``html``."""
    folder = opts.out_dir or src.parent
    paths = {fmt: folder / f"{src.stem}{captions.EXTENSIONS[fmt]}" for fmt in opts.formats}
    for key, suffix in SUFFIXES.items():
        if getattr(opts, key):
            paths[key] = folder / f"{src.stem}{suffix}"
    return paths


def up_to_date(src: Path, paths: dict[str, Path]) -> bool:
    """Every output exists and is newer than the input: the job was done before."""
    mtime = src.stat().st_mtime
    return all(p.is_file() and p.stat().st_mtime >= mtime for p in paths.values())


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


@dataclass(frozen=True)
class FileReport:
    """How one input went: ``done``, ``skipped`` (outputs up to date) or ``failed``."""

    source: Path
    status: str
    outputs: tuple[Path, ...] = ()
    summary: Summary | None = None
    message: str = ""


def process(src: Path, opts: Options, models: list[ModelBundle], progress: Progress, *,
            processes: bool | None = None) -> FileReport:
    """Analyse one input and write every requested output.

    Outputs that all exist and are newer than the input are left alone
    (``skipped``) unless ``opts.overwrite``. Raises DramapicError on bad input.
    ``processes`` is :func:`analyze`'s.
    """
    paths = output_paths(src, opts)
    if src.is_file() and not opts.overwrite and up_to_date(src, paths):
        return FileReport(src, "skipped", tuple(paths.values()), message="outputs are up to date")
    check_outputs(src, paths, opts)
    ffmpeg = find_ffmpeg(opts.ffmpeg)
    info = probe(src, ffmpeg=ffmpeg)
    analysis = analyze(src, models=models, window_s=opts.window_s, hop_s=opts.hop_s, ffmpeg=ffmpeg,
                       progress=progress, info=info, processes=processes)
    summary = summarize(analysis)
    # Each output is written atomically, so an interrupted burn leaves the
    # finished captions and no partial video.
    written = [captions.write(analysis, fmt, paths[fmt], lang=opts.lang) for fmt in opts.formats]
    if opts.plot or opts.html:
        written += _timeline_outputs(analysis, summary, paths, opts, info=info, ffmpeg=ffmpeg)
    if opts.embed:
        written.append(burner.embed(src, analysis, paths["embed"], lang=opts.lang, ffmpeg=ffmpeg, info=info,
                                    placement=opts.placement, progress=progress))
    if opts.burn:
        written.append(burner.burn(src, analysis, paths["burn"], lang=opts.lang, ffmpeg=ffmpeg,
                                   info=info, placement=opts.placement, progress=progress))
    return FileReport(src, "done", tuple(written), summary)


def _timeline_outputs(analysis: Analysis, summary: Summary, paths: dict[str, Path], opts: Options, *,
                      info: MediaInfo, ffmpeg: str) -> list[Path]:
    """The timeline PNG and/or the review page (which inlines that PNG and a thumbnail)."""
    with tempfile.TemporaryDirectory(prefix="dramapic-plot-") as tmp:
        png = paths["plot"] if opts.plot else Path(tmp) / "timeline.png"
        geometry = plot.timeline_png(analysis, png)
        written = [png] if opts.plot else []
        if opts.html:
            thumb = _thumbnail(analysis, png, Path(tmp) / "thumb.jpg", has_video=info.has_video, ffmpeg=ffmpeg)
            written.append(review.write_page(analysis, summary, png, geometry, paths["html"], lang=opts.lang,
                                             placement=opts.placement, thumbnail=thumb.read_bytes()))
    return written


def _thumbnail(analysis: Analysis, png: Path, out: Path, *, has_video: bool, ffmpeg: str) -> Path:
    """A frame from a third of the way in (past the titles); the timeline for audio.

    A video whose pictures stop before that (a truncated file) gets the
    timeline too, rather than failing a review page over its thumbnail.
    """
    if has_video:
        try:
            return thumbnail(analysis.source, out, at_s=analysis.duration_s / 3, width=THUMB_WIDTH, ffmpeg=ffmpeg)
        except MediaError:
            pass
    return thumbnail(png, out, at_s=0.0, width=THUMB_WIDTH, ffmpeg=ffmpeg)


def process_safely(src: Path, opts: Options, models: list[ModelBundle], progress: Progress | None = None, *,
                   processes: bool | None = None) -> FileReport:
    """:func:`process`, with a user-caused error turned into a ``failed`` report."""
    try:
        return process(src, opts, models, progress or Progress(quiet=True), processes=processes)
    except DramapicError as exc:
        return FileReport(src, "failed", message=str(exc))
    except OSError as exc:  # disk full, permission denied mid-write, ...
        where = f": {exc.filename}" if exc.filename else ""
        return FileReport(src, "failed", message=f"{src}: {exc.strerror or exc}{where}")


def claim_outputs(files: list[Path], opts: Options) -> tuple[list[Path], list[FileReport]]:
    """Drop each file whose outputs would land on an earlier file's (``clip.mp4`` beside ``clip.wav``,
    or two folders' ``a.mp4`` into one ``--output-dir``): run side by side, the later writer would
    silently replace the other's captions.

    Returns
    -------
    files : list of Path
        The inputs that keep their outputs, in order.
    clashes : list of FileReport
        A ``failed`` report per dropped input, naming the file it clashes with.
    """
    owner: dict[Path, Path] = {}
    kept, clashes = [], []
    for src in files:
        paths = [p.resolve() for p in output_paths(src, opts).values()]
        clash = next((owner[p] for p in paths if p in owner), None)
        if clash is not None:
            clashes.append(FileReport(src, "failed", message=f"{src}: skipped, its outputs would overwrite "
                                                              f"those of {clash} (same name); rename one of them"))
            continue
        owner.update(dict.fromkeys(paths, src))
        kept.append(src)
    return kept, clashes


def run_batch(inputs: list[Path], opts: Options, models: list[ModelBundle], *, jobs: int = 1,
              progress: Progress | None = None) -> Iterator[FileReport]:
    """Process many inputs, in parallel with joblib when ``jobs != 1``; yield reports as they finish.

    An input whose outputs an earlier one writes is not processed: its report, ``failed``, comes
    first (:func:`claim_outputs`).

    Any joblib backend serves: inside ``joblib.parallel_config(backend="dask")``
    the files are spread over a Dask cluster's workers (which must see the
    same paths). With files in parallel the cores are busy already, so each
    file's streams stay in its worker's process (no child processes).
    """
    progress = progress or Progress(quiet=True)
    inputs, clashes = claim_outputs(inputs, opts)
    yield from clashes
    if jobs == 1 or len(inputs) <= 1:
        for src in inputs:
            with progress:
                yield process_safely(src, opts, models, progress)
        return
    from joblib import Parallel, delayed

    with progress:
        task = progress.task("files", total=len(inputs))
        work = (delayed(process_safely)(src, opts, models, processes=False) for src in inputs)
        for done, report in enumerate(Parallel(n_jobs=jobs, return_as="generator_unordered")(work), 1):
            progress.update(task, done)
            yield report


def write_batch_index(reports: list[FileReport], opts: Options) -> Path | None:
    """With ``opts.html`` and several inputs, ``index.html`` over their review pages (else None).

    Pages of inputs skipped as up to date are listed too; failed inputs are not.
    """
    if not opts.html or len(reports) < 2:
        return None
    pages = [output_paths(r.source, opts)["html"] for r in reports if r.status in ("done", "skipped")]
    pages = [p for p in pages if p.is_file()]
    if not pages:
        return None
    return index.write_index(pages, index.index_path(pages, opts.out_dir), overwrite=opts.overwrite)


__all__ = ["Options", "FileReport", "analyze", "process", "process_safely", "run_batch", "load_models",
           "output_paths", "write_batch_index"]
