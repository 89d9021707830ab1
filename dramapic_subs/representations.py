"""What a model sees of the sound: the inputs a bundle's card names, each a stream over sample blocks.

A bundle's estimator takes the columns of its inputs side by side, in the
order of its card's ``inputs`` list. Each input turns a stream of decoded
blocks into rows for complete windows (``push``/``finish``, both returning
an object with ``index`` and ``X``), so the pipeline feeds every input the
same way and a new representation is one more class here, never a branch in
the pipeline. A *gated* input (``gated = True``: too costly to run
everywhere) is computed only where a voice is likely: its product stream's
``push(block, wanted)`` and ``finish(wanted)`` also take the decisions
(bool per window, in order) for the windows the sound model has reached.

* ``spectral``: the pooled STFT features of :mod:`dramapic_subs.features`
  at the bundle's n_fft and frame hop (n_fft / 4 when the card names none);
  the card names the columns the model takes (``columns``), so a model keeps
  to its own as the features grow. A card without them (written before
  ``features.SONG_FEATURES``) takes ``features.BASE_FEATURES``.
* ``silero_vad``: Silero VAD's speech probability pooled per window
  (:mod:`dramapic_subs.vad`), weights in a file beside the bundle; its peak
  per window (``activity``) is also the voice rule's evidence that a voice
  is heard at all (:mod:`dramapic_subs.voice`).
* ``speaker_embedding``: Resemblyzer's speaker embedding of every
  ``stride``-th window (:mod:`dramapic_subs.embedding`), weights beside the bundle.

Models that share an input share its stream: ``shared_with`` gives the input
whose stream computes the columns of both (all of them, or for ``spectral``
the union of the two models' columns, the others left 0); ``select`` picks
one model's columns from its rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Protocol

import numpy as np

from .checksums import sha256_file
from .embedding import EMBED_DIM, EmbeddingStream, SpeakerEncoder, VoicedEmbeddingStream, load_encoder
from .errors import ModelError, ParameterError
from .features import BASE_FEATURES, SONG_FEATURES, FeatureSpec, StreamFeaturizer, feature_names
from .vad import PEAK, VAD_FEATURES, SileroWeights, VadStream
from .windows import WindowGrid


class Stream(Protocol):
    def push(self, block): ...
    def finish(self): ...


class Representation(Protocol):
    """One input of a model: its columns' names and a stream that computes them."""

    @property
    def key(self) -> Hashable: ...
    @property
    def names(self) -> list[str]: ...
    def stream(self, grid: WindowGrid) -> Stream: ...
    def select(self, X: np.ndarray) -> np.ndarray: ...
    def shared_with(self, other: "Representation") -> "Representation": ...
    def card(self) -> dict: ...


def shared_inputs(inputs) -> dict[Hashable, Representation]:
    """One input per stream (``key``), computing what every model that uses it selects."""
    out: dict[Hashable, Representation] = {}
    for rep in inputs:
        out[rep.key] = out[rep.key].shared_with(rep) if rep.key in out else rep
    return out


@dataclass(frozen=True)
class Spectral:
    """Pooled STFT features at one n_fft and hop (one STFT per setting, shared by the models that use it).

    ``columns``: the names of the features the model takes, in its order (None: all of
    :func:`~dramapic_subs.features.feature_names`).
    """

    spec: FeatureSpec
    columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.columns is None:
            return
        unknown = sorted(set(self.columns) - set(feature_names()))
        if unknown:
            raise ModelError(f"spectral features {unknown[:3]} are not computed by this version of dramapic-subs")
        if list(self.columns) == feature_names():  # all of them, in order: one way to say so, so equality holds
            object.__setattr__(self, "columns", None)

    @property
    def key(self) -> Hashable:
        # The hop is part of it: two models at one n_fft but different hops need two streams.
        # The columns are not: the stream computes them all, each model selects its own.
        return ("spectral", self.spec.n_fft, self.spec.hop, self.spec.sr)

    @property
    def names(self) -> list[str]:
        return feature_names() if self.columns is None else list(self.columns)

    # Pure numpy that holds the GIL, rows small to pickle: worth a core of its own.
    own_process = True

    def stream(self, grid: WindowGrid) -> StreamFeaturizer:
        song = self.columns is None or not set(SONG_FEATURES).isdisjoint(self.columns)
        return StreamFeaturizer(self.spec, grid, song=song)

    def select(self, X: np.ndarray) -> np.ndarray:
        """This model's columns of the stream's rows (all of ``feature_names()``)."""
        return X if self.columns is None else X[:, _column_index(self.columns)]

    def shared_with(self, other: "Spectral") -> "Spectral":
        """The same stream computing this model's columns and ``other``'s (same ``key``)."""
        if self.columns is None or other.columns is None:
            return Spectral(self.spec)
        return Spectral(self.spec, tuple(n for n in feature_names() if n in {*self.columns, *other.columns}))

    def card(self) -> dict:
        return {"kind": "spectral", "n_fft": self.spec.n_fft, "hop": self.spec.hop, "sr": self.spec.sr,
                "columns": self.names}


def _column_index(columns: tuple[str, ...]) -> np.ndarray:
    names = feature_names()
    return np.array([names.index(c) for c in columns])


@dataclass(frozen=True)
class SileroVad:
    """Silero VAD's pooled speech probability; ``file`` is the weights' name beside the bundles."""

    weights: SileroWeights = field(compare=False, hash=False)
    file: str
    sha256: str

    @property
    def key(self) -> Hashable:
        return ("silero_vad", self.sha256)

    @property
    def names(self) -> list[str]:
        return list(VAD_FEATURES)

    def stream(self, grid: WindowGrid) -> VadStream:
        return VadStream(self.weights, grid)

    def select(self, X: np.ndarray) -> np.ndarray:
        return X

    def shared_with(self, other: "SileroVad") -> "SileroVad":
        return self

    def activity(self, X: np.ndarray) -> np.ndarray:
        """Silero's peak speech probability (0-1) per window, from this input's rows: the voice rule's
        evidence that a voice is heard at all (:mod:`dramapic_subs.voice`)."""
        return X[:, VAD_FEATURES.index(PEAK)]

    def card(self) -> dict:
        return {"kind": "silero_vad", "file": self.file, "sha256": self.sha256}


@dataclass(frozen=True)
class SpeakerEmbedding:
    """Resemblyzer's speaker embedding of every ``stride``-th window (the others take the nearest one's).

    ``refine``: in the product, where two neighbouring embedded windows differ by more than this
    cosine distance, the windows between them are embedded too (None: never;
    :class:`~dramapic_subs.embedding.VoicedEmbeddingStream`).
    """

    encoder: SpeakerEncoder = field(compare=False, hash=False)
    file: str
    sha256: str
    stride: int = 1
    refine: float | None = None

    @property
    def key(self) -> Hashable:
        return ("speaker_embedding", self.sha256, self.stride, self.refine)

    @property
    def names(self) -> list[str]:
        return [f"spk{i}" for i in range(EMBED_DIM)]

    # Gated: the product computes it only on windows where a voice is likely.
    gated = True

    def stream(self, grid: WindowGrid, *, gated: bool = False) -> EmbeddingStream | VoicedEmbeddingStream:
        """Every ``stride``-th window's embedding (training), or with ``gated`` only where told."""
        if gated:
            return VoicedEmbeddingStream(self.encoder, grid, stride=self.stride, refine=self.refine)
        return EmbeddingStream(self.encoder, grid, stride=self.stride)

    def select(self, X: np.ndarray) -> np.ndarray:
        return X

    def shared_with(self, other: "SpeakerEmbedding") -> "SpeakerEmbedding":
        return self

    def card(self) -> dict:
        card = {"kind": "speaker_embedding", "file": self.file, "sha256": self.sha256, "stride": self.stride}
        return card if self.refine is None else {**card, "refine": self.refine}


def encoder_from_file(path: Path, *, stride: int = 1) -> SpeakerEmbedding:
    """Load the speaker encoder from ``path`` (its own card beside it is checked too)."""
    return SpeakerEmbedding(load_encoder(path), path.name, sha256_file(path), stride)


def silero_from_file(path: Path) -> SileroVad:
    """Load Silero's weights from ``path``; the card records their hash."""
    return SileroVad(SileroWeights.load(path), path.name, sha256_file(path))


def from_card(entry: dict, *, directory: Path) -> Representation:
    """The representation a card's ``inputs`` entry describes, its files hash-checked.

    Raises
    ------
    ModelError
        An unknown kind, or a weights file that is missing or altered.
    """
    kind = entry.get("kind")
    if kind == "spectral":
        columns = entry.get("columns", BASE_FEATURES)  # cards without them predate the song columns
        return Spectral(spec_from_card(entry), tuple(columns))
    if kind == "silero_vad":
        path = _checked(directory / entry["file"], entry.get("sha256"))
        return SileroVad(SileroWeights.load(path), entry["file"], entry["sha256"])
    if kind == "speaker_embedding":
        path = _checked(directory / entry["file"], entry.get("sha256"))
        refine = entry.get("refine")  # cards before it: the stride points only
        return SpeakerEmbedding(load_encoder(path), entry["file"], entry["sha256"], int(entry.get("stride", 1)),
                                None if refine is None else float(refine))
    raise ModelError(f"model input of unknown kind {kind!r}: this version of dramapic-subs cannot use it")


def spec_from_card(entry: dict) -> FeatureSpec:
    """The :class:`FeatureSpec` a card (or a card's spectral input) records.

    Cards written before the hop was a setting name none, or n_fft / 4: both
    load at n_fft / 4, the hop every model of that time was trained at.

    Raises
    ------
    ModelError
        n_fft, hop or sr are not whole numbers, or not ones the features take.
    """
    try:
        n_fft = int(entry["n_fft"])
        hop = entry.get("hop")
        return FeatureSpec(n_fft, int(entry.get("sr", 16000)), hop=None if hop is None else int(hop))
    except (KeyError, TypeError, ValueError, ParameterError) as exc:
        raise ModelError(f"model card: unusable analysis settings {entry.get('n_fft')!r} / "
                         f"{entry.get('hop')!r} / {entry.get('sr')!r} ({exc})") from None


def _checked(path: Path, sha256: str | None) -> Path:
    """``path``, if it exists and its bytes hash to ``sha256``."""
    if not path.is_file():
        raise ModelError(f"{path}: model input file not found")
    if sha256_file(path) != sha256:
        raise ModelError(f"{path}: sha256 does not match the model card; refusing altered weights")
    return path


def window_matrix(y: np.ndarray, *, inputs: tuple, grid: WindowGrid) -> np.ndarray:
    """The columns of ``inputs`` side by side for every window of a whole signal (the streaming code)."""
    cols = []
    for rep in inputs:
        stream = rep.stream(grid)
        parts = [stream.push(y), stream.finish()]
        cols.append(rep.select(type(parts[0]).concat(parts).X))
    return np.hstack(cols)
