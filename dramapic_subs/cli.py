"""``dramapic-subs``: the command line.

Parses flags, expands inputs, runs the pipeline per input (in parallel with
``--jobs``), and turns every user-caused error into one line on stderr and a
non-zero exit.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional

import typer

from . import __version__
from .errors import DramapicError, ParameterError
from .placement import DEFAULT_FONT_SIZE, Placement
from .windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S, make_grid

if TYPE_CHECKING:
    from .pipeline import FileReport, Options
    from .progress import Progress

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})
PROG = "dramapic-subs"


def _with_smoothing(bundles: list, width: int | None) -> list:
    """The bundles with the sound-type model's smoothing width set to ``width`` (None: as shipped)."""
    from .models import SOUND_TYPE  # loaded with the bundles already; not at import (--help stays fast)

    if width is None:
        return bundles
    if width < 1 or width % 2 == 0:
        raise ParameterError(f"--smooth must be an odd number of windows (1 for none), got {width}")
    return [replace(b, smooth=width) if b.name == SOUND_TYPE else b for b in bundles]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


@app.command()
def run(
    inputs: List[Path] = typer.Argument(..., help="Video or audio files, folders (searched recursively) or globs.",
                                        show_default=False),
    burn: bool = typer.Option(False, "--burn", help="Also write <stem>.subtitled.mp4 with the captions burned in."),
    fmt: str = typer.Option("srt", "--format", "-f",
                            help="Outputs, comma-separated: srt, vtt, json (captions); csv, audacity, textgrid, "
                                 "rttm (segments)."),
    out_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Folder for outputs (default: beside each input)."),
    window: float = typer.Option(DEFAULT_WINDOW_S, "--window", help="Analysis window, seconds."),
    hop: float = typer.Option(DEFAULT_HOP_S, "--hop", help="Hop between windows = caption length, seconds."),
    smooth: Optional[int] = typer.Option(None, "--smooth", help="Sound-type smoothing, in windows (odd; default: the "
                                                                 "model's; 1: each window's own probabilities)."),
    lang: str = typer.Option("en", "--lang", help="Caption label language: en or ko."),
    plot: bool = typer.Option(False, "--plot", help="Also write <stem>.timeline.png."),
    html: bool = typer.Option(False, "--html", help="Also write <stem>.review.html, a review page."),
    embed: bool = typer.Option(False, "--embed", help="Also write <stem>.captioned.mp4 with a soft subtitle track."),
    position: str = typer.Option("bottom", "--position",
                                 help="Captions at the bottom or top of the picture (burn, embed, review page)."),
    font_size: float = typer.Option(DEFAULT_FONT_SIZE, "--font-size",
                                    help="Caption text height, % of the picture height (2-20)."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Files processed in parallel (-1: one per core)."),
    dask: Optional[str] = typer.Option(None, "--dask", help="Run the files on this Dask scheduler (address)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (and redo up-to-date ones)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or messages; errors only."),
    ffmpeg: Optional[str] = typer.Option(None, "--ffmpeg", envvar="DRAMAPIC_FFMPEG",
                                         help="ffmpeg binary (default: the one from imageio-ffmpeg)."),
    models: Optional[Path] = typer.Option(None, "--models", envvar="DRAMAPIC_MODELS",
                                          help="Folder with model bundles (default: the shipped ones)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Caption what each input's soundtrack holds: speech, song, music, noise,
    nature, and female/male voice, one cue per hop."""
    try:
        # Imported here: --help and --version answer without loading the analysis stack (scipy, rich, ...).
        from .captions import check_lang, parse_formats
        from .inputs import expand_inputs
        from .pipeline import Options, load_models, run_batch
        from .progress import Progress

        progress = Progress(quiet=quiet)
        opts = Options(window_s=window, hop_s=hop, formats=tuple(parse_formats(fmt)), burn=burn,
                       out_dir=out_dir, lang=check_lang(lang), overwrite=overwrite, ffmpeg=ffmpeg,
                       plot=plot, html=html, embed=embed, placement=Placement(position, font_size))
        make_grid(sr=16000, window_s=window, hop_s=hop)  # reject bad lengths before any work
        if jobs == 0 or jobs < -1:
            raise ParameterError(f"--jobs must be a positive number or -1, got {jobs}")
        if out_dir is not None and not out_dir.is_dir():  # once, not once per input
            raise ParameterError(f"output folder does not exist: {out_dir}")
        bundles = _with_smoothing(load_models(models), smooth)
    except DramapicError as exc:
        _error(str(exc))
        raise typer.Exit(2)
    except KeyboardInterrupt:
        _error("interrupted; no output was written")
        raise typer.Exit(130)
    files, problems = expand_inputs(inputs)
    for problem in problems:
        _error(problem)
    reports: list[FileReport] = []
    try:
        with _backend(dask):
            for report in run_batch(files, opts, bundles, jobs=-1 if dask else jobs, progress=progress):
                reports.append(report)
                _tell(report, progress)
        index_failed = _index(reports, opts, progress)
    except KeyboardInterrupt:
        _error("interrupted; no partial output was left")
        raise typer.Exit(130)
    if len(reports) > 1 or (reports and reports[0].summary):
        progress.table(["file", "result", "speech", "music", "ambient", "silence", "female", "looks like"],
                       [_row(r) for r in reports],
                       title="music = music + song, ambient = noise + nature, female = share of speech time")
        if len(reports) == 1 and reports[0].summary:
            progress.log(f"looks like {reports[0].summary.video_type}: {reports[0].summary.reason}")
    if problems or index_failed or any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


def _index(reports: list[FileReport], opts: Options, progress: Progress) -> bool:
    """Write the batch's review index; True if that failed (reported in one line)."""
    from .pipeline import write_batch_index

    try:
        path = write_batch_index(reports, opts)
    except (DramapicError, OSError) as exc:
        _error(f"review index: {exc}")
        return True
    if path:
        progress.log(f"wrote {path}")
    return False


@contextlib.contextmanager
def _backend(address: str | None) -> Iterator[None]:
    """joblib's Dask backend on the named scheduler, or nothing."""
    if not address:
        yield
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise DramapicError("--dask needs dask[distributed]: pip install 'dask[distributed]'") from None
    import joblib

    with Client(address), joblib.parallel_config(backend="dask"):
        yield


def _tell(report: FileReport, progress: Progress) -> None:
    if report.status == "failed":
        _error(report.message)
    elif report.status == "skipped":
        progress.log(f"skipped {report.source}: {report.message} (--overwrite redoes it)")
    else:
        for path in report.outputs:
            progress.log(f"wrote {path}")


def _row(report: FileReport) -> list[str]:
    s = report.summary
    if s is None:
        return [report.source.name, report.status, *[""] * 6]
    pct = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    female = pct(s.voices["female"]) if s.voices else "-"
    return [report.source.name, report.status, pct(s.shares["speech"]),
            pct(s.shares["music"] + s.shares["song"]), pct(s.shares["noise"] + s.shares["nature"]),
            pct(s.shares["silence"]), female, s.video_type]


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main() -> None:
    app(prog_name=PROG)
