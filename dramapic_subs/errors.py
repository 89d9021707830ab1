"""Exception types.

Every error a user can cause (bad path, bad media, bad option, tampered
model) is a :class:`DramapicError`; the CLI prints its message as one line
and exits non-zero. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class DramapicError(Exception):
    """An error caused by the input, the options or the environment."""


class ParameterError(DramapicError):
    """A parameter is out of range or inconsistent (like librosa's)."""


class MediaError(DramapicError):
    """ffmpeg could not read, decode or write a media file."""


class ModelError(DramapicError):
    """A model bundle is missing, altered or incompatible."""
