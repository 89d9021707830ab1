"""dramapic-subs: subtitle what a video's soundtrack holds.

Speech / song / music / noise / nature and female / male probabilities per
window, written as SRT/VTT/JSON captions and optionally burned into the video.

    >>> import dramapic_subs
    >>> result = dramapic_subs.analyze("drama.mp4")
    >>> result.summary.video_type
"""
from __future__ import annotations

__version__ = "0.1.0"


def analyze(path, **kwargs):
    """See :func:`dramapic_subs.api.analyze` (imported lazily: the CLI's start-up stays light)."""
    from .api import analyze as _analyze

    return _analyze(path, **kwargs)


def load_models(models_dir=None):
    """The shipped (or ``models_dir``'s) sound-type and gender bundles, hash-checked."""
    from .pipeline import load_models as _load

    return _load(models_dir)
