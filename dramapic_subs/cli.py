"""``dramapic-subs``: the command line.

Parses flags, runs the pipeline per input, and turns every user-caused error
into one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .captions import check_lang, parse_formats
from .errors import DramapicError
from .pipeline import Options, load_models, process
from .progress import Progress
from .windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S, make_grid

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
PROG = "dramapic-subs"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


@app.command()
def run(
    inputs: List[Path] = typer.Argument(..., help="Video or audio files to caption.", show_default=False),
    burn: bool = typer.Option(False, "--burn", help="Also write <stem>.subtitled.mp4 with the captions burned in."),
    fmt: str = typer.Option("srt", "--format", "-f", help="Caption formats, comma-separated: srt, vtt, json."),
    out_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Folder for outputs (default: beside each input)."),
    window: float = typer.Option(DEFAULT_WINDOW_S, "--window", help="Analysis window, seconds."),
    hop: float = typer.Option(DEFAULT_HOP_S, "--hop", help="Hop between windows = caption length, seconds."),
    lang: str = typer.Option("en", "--lang", help="Caption label language: en or ko."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or messages; errors only."),
    ffmpeg: Optional[str] = typer.Option(None, "--ffmpeg", envvar="DRAMAPIC_FFMPEG",
                                         help="ffmpeg binary (default: the one from imageio-ffmpeg)."),
    models: Optional[Path] = typer.Option(None, "--models", envvar="DRAMAPIC_MODELS",
                                          help="Folder with model bundles (default: the shipped ones)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Caption what each input's soundtrack holds: speech, song, music, noise,
    nature, and female/male voice, one cue per hop."""
    progress = Progress(quiet=quiet)
    try:
        opts = Options(window_s=window, hop_s=hop, formats=tuple(parse_formats(fmt)), burn=burn,
                       out_dir=out_dir, lang=check_lang(lang), overwrite=overwrite, ffmpeg=ffmpeg,
                       models_dir=models)
        make_grid(sr=16000, window_s=window, hop_s=hop)  # reject bad lengths before any work
        bundles = load_models(models)
    except DramapicError as exc:
        _fail(str(exc))
    failed = 0
    for src in inputs:
        try:
            with progress:
                _, written = process(src, opts, bundles, progress)
            for path in written:
                progress.log(f"wrote {path}")
        except DramapicError as exc:
            failed += 1
            _error(str(exc))
        except OSError as exc:  # disk full, permission denied mid-write, ...
            failed += 1
            _error(f"{src}: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        except KeyboardInterrupt:
            _error("interrupted; no partial output was left")
            raise typer.Exit(130)
    if failed:
        raise typer.Exit(1)


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _fail(message: str) -> None:
    _error(message)
    raise typer.Exit(2)


def main() -> None:
    app(prog_name=PROG)
