"""dramapic-subs: subtitle what a video's soundtrack holds.

Speech / song / music / noise / nature and female / male probabilities per
window, written as SRT/VTT/JSON captions and optionally burned into the video.

    >>> import dramapic_subs
    >>> result = dramapic_subs.analyze("drama.mp4")
    >>> result.summary.video_type
"""
from __future__ import annotations

__version__ = "0.1.0"


def main() -> None:
    """The ``dramapic-subs`` command.

    The command line's imports (typer, rich, numpy, ...) take about half a
    second; a Ctrl-C during them ends with the same one line and exit status
    130 as a Ctrl-C during analysis, not a traceback.
    """
    import sys

    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("dramapic-subs: error: interrupted; no output was written", file=sys.stderr)
        raise SystemExit(130) from None
    cli_main()


def analyze(path, **kwargs):
    """See :func:`dramapic_subs.api.analyze` (imported lazily: the CLI's start-up stays light)."""
    from .api import analyze as _analyze

    return _analyze(path, **kwargs)


def load_models(models_dir=None):
    """The shipped (or ``models_dir``'s) sound-type and gender bundles, hash-checked."""
    from .pipeline import load_models as _load

    return _load(models_dir)
