"""Model bundles: a fitted classifier as plain arrays, plus everything needed to use it.

A bundle is two files in ``models/``: ``NAME.npz`` (the classifier's arrays,
see :mod:`dramapic_subs.estimators`) and ``NAME.json`` (bundle format, labels,
n_fft, hop, feature names, sample rate, smoothing, training-data summary,
library versions and the sha256 of the npz). No pickle: the arrays load with
``allow_pickle=False`` on any numpy the project allows, and need no
scikit-learn; the sha256 is still checked before reading, so an altered or
corrupt file is refused rather than half-used.
"""
from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import estimators
from .checksums import sha256_file
from .errors import ModelError
from .features import FeatureSpec
from .representations import Representation, Spectral, from_card, spec_from_card
from .smoothing import ChangeRule, smooth_at_changes, smooth_probabilities

MODELS_ENV = "DRAMAPIC_MODELS"
SOUND_TYPE = "sound_type"
GENDER = "gender"


@dataclass
class ModelBundle:
    """A classifier and the analysis settings it was trained with.

    Attributes
    ----------
    name : str
        ``sound_type`` or ``gender``.
    estimator : NumpyClassifier or fitted scikit-learn classifier
        ``predict_proba`` columns follow its ``classes_``; loaded bundles hold
        a :class:`~dramapic_subs.estimators.NumpyClassifier`.
    labels : list of str
    spec : FeatureSpec
        n_fft, frame hop and sample rate the features must be computed with.
    smooth : int
        Width in windows of the centred moving average over probabilities.
    change : ChangeRule or None
        Where the moving average stops: the sound changes between two
        windows (see :mod:`dramapic_subs.smoothing`). None: it never stops.
    meta : dict
        Training summary, scores and library versions (free-form, JSON).
    inputs : tuple of Representation
        What the estimator's columns are, in order; empty means the spectral
        features at ``spec`` alone.
    temperature : float
        Calibration: probabilities are ``softmax(log(p) / temperature)``,
        ``temperature`` fitted on out-of-corpus predictions.
    """

    name: str
    estimator: Any
    labels: list[str]
    spec: FeatureSpec
    smooth: int = 1
    meta: dict = field(default_factory=dict)
    inputs: tuple[Representation, ...] = ()
    temperature: float = 1.0
    change: ChangeRule | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            self.inputs = (Spectral(self.spec),)
        if self.change is not None:
            self.change.indices(self.feature_names)  # refuses a rule on columns the model does not take

    @property
    def feature_names(self) -> list[str]:
        """Column names of the estimator's input, all inputs side by side."""
        return [name for rep in self.inputs for name in rep.names]

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unversioned"))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_windows, n_labels), columns as ``labels``."""
        if len(X) == 0:
            return np.zeros((0, len(self.labels)))
        proba = self.estimator.predict_proba(X)
        classes = [str(c) for c in self.estimator.classes_]
        return calibrate(proba[:, [classes.index(lab) for lab in self.labels]], temperature=self.temperature)

    def predict_windows(self, X: np.ndarray, *, silent: np.ndarray) -> np.ndarray:
        """:meth:`predict_proba` of the windows that are not ``silent``; NaN rows for the silent ones.

        Not smoothed (see :meth:`smooth_windows`, which skips the NaN rows).
        """
        proba = np.full((len(X), len(self.labels)), np.nan)
        proba[~silent] = self.predict_proba(X[~silent])
        return proba

    def smooth_windows(self, proba: np.ndarray, X: np.ndarray, *, silent: np.ndarray) -> np.ndarray:
        """``proba`` (rows of :meth:`predict_windows` for the windows of ``X``) averaged over ``smooth``
        neighbouring windows, inside each stretch of one sound if the bundle has a change rule."""
        if self.change is None or self.smooth <= 1:
            return smooth_probabilities(proba, width=self.smooth, valid=~silent)
        return smooth_at_changes(proba, self.change.standardised(X, self.feature_names), width=self.smooth,
                                 valid=~silent, threshold=self.change.threshold, labels=self.labels)


def calibrate(proba: np.ndarray, *, temperature: float) -> np.ndarray:
    """Temperature scaling of probabilities: ``softmax(log(p) / T)`` row by row (T > 1 softens)."""
    if temperature == 1.0 or len(proba) == 0:
        return proba
    logits = np.log(np.clip(proba, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


# Card keys that describe the bundle itself; the rest is ``ModelBundle.meta``.
_CARD_KEYS = {"name", "format", "labels", "n_fft", "hop", "sr", "features", "smooth", "smooth_change", "sha256",
              "inputs", "temperature"}


def save_bundle(bundle: ModelBundle, directory: Path) -> Path:
    """Export the estimator to ``NAME.npz`` and write the ``NAME.json`` card beside it.

    Parameters
    ----------
    bundle : ModelBundle
        Its estimator: a fitted scikit-learn classifier of a kind
        :func:`~dramapic_subs.estimators.export` supports.
    directory : Path
        Created if missing.

    Returns
    -------
    Path
        The card's path.

    Raises
    ------
    ModelError
        The estimator cannot be exported, or its export does not reproduce its probabilities.
    """
    arrays = estimators.export(bundle.estimator)
    directory.mkdir(parents=True, exist_ok=True)
    blob = directory / f"{bundle.name}.npz"
    write_npz(blob, arrays)
    card = {
        "name": bundle.name,
        "format": estimators.FORMAT,
        "labels": bundle.labels,
        "n_fft": bundle.spec.n_fft,
        "hop": bundle.spec.hop,
        "sr": bundle.spec.sr,
        "features": bundle.feature_names,
        "inputs": [rep.card() for rep in bundle.inputs],
        "temperature": bundle.temperature,
        "smooth": bundle.smooth,
        **({"smooth_change": bundle.change.card()} if bundle.change is not None else {}),
        "sha256": sha256_file(blob),
        **{k: v for k, v in bundle.meta.items() if k not in _CARD_KEYS},
    }
    path = directory / f"{bundle.name}.json"
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_bundle(name: str, *, directory: Path | None = None) -> ModelBundle:
    """Load a bundle, refusing it if its hash, format, arrays or feature list do not fit this code.

    Parameters
    ----------
    name : str
        ``sound_type`` or ``gender``.
    directory : Path, optional
        Default: :func:`default_models_dir`.

    Raises
    ------
    ModelError
        One line naming the file and what it needs: missing files, a sha256
        mismatch (altered or corrupt file), a pickled bundle of an older
        release, an unknown bundle format or estimator kind, missing arrays,
        or features this version of the code does not compute.
    """
    directory = directory or default_models_dir()
    card_path, blob = directory / f"{name}.json", directory / f"{name}.npz"
    card = read_card(card_path)
    _check_format(card, card_path)
    if not blob.is_file():
        raise ModelError(f"{blob} not found (the card {card_path.name} has no arrays beside it)")
    if sha256_file(blob) != card.get("sha256"):
        raise ModelError(f"{blob}: sha256 does not match {card_path.name}; refusing to load an altered model")
    try:
        with np.load(blob, allow_pickle=False) as npz:
            model = estimators.NumpyClassifier({k: npz[k] for k in npz.files})
    except ModelError as exc:
        raise ModelError(f"{blob}: {exc}; use the release that wrote it, or refit it with this one "
                         "(dramapic-subs-train fit)") from None
    except (OSError, ValueError) as exc:  # not a zip, or an array needing pickle
        raise ModelError(f"{blob}: unreadable model arrays ({exc})") from None
    bundle = bundle_from_card(card, model, directory=directory)
    if card.get("features") != bundle.feature_names:
        raise ModelError(f"{blob}: trained on other features than this version computes; retrain it")
    return bundle


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with a fixed time stamp on every member.

    savez stamps the current time, so two identical fits would differ in
    bytes (and sha256); the format is the same, ``np.load`` reads it.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.asarray(arrays[key]), allow_pickle=False)


def read_card(card_path: Path) -> dict:
    """A bundle's JSON card, or a one-line ModelError."""
    if not card_path.is_file():
        raise ModelError(f"model '{card_path.stem}' not found in {card_path.parent} (run: dramapic-subs-train fit)")
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc})") from None


def bundle_from_card(card: dict, estimator: Any, *, directory: Path) -> ModelBundle:
    """A :class:`ModelBundle` of ``estimator`` with the card's settings, inputs (files beside it in
    ``directory``, hash-checked) and metadata."""
    spec = spec_from_card(card)
    inputs = tuple(from_card(entry, directory=directory) for entry in card.get("inputs", []))
    _check_spectral_input(card, spec, inputs)
    try:
        return ModelBundle(
            name=card["name"],
            estimator=estimator,
            labels=list(card["labels"]),
            spec=spec,
            smooth=int(card.get("smooth", 1)),
            meta={k: v for k, v in card.items() if k not in _CARD_KEYS},
            inputs=inputs,
            temperature=float(card.get("temperature", 1.0)),
            change=ChangeRule.from_card(card["smooth_change"]) if "smooth_change" in card else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model card of '{card.get('name', '?')}' lacks or garbles {exc}") from None


def _check_spectral_input(card: dict, spec: FeatureSpec, inputs: tuple) -> None:
    """Refuse a card whose own n_fft / hop are not those of its first spectral input.

    The input's setting is what the stream computes, the card's what the
    output reports and training reuses: a card edited in one place only
    would feed the model frames at one hop while claiming another.
    """
    spectral = next((rep for rep in inputs if isinstance(rep, Spectral)), None)
    if spectral is not None and spectral.spec != spec:
        raise ModelError(f"model card of '{card.get('name', '?')}' contradicts itself: n_fft {spec.n_fft}, hop "
                         f"{spec.hop} at the top, n_fft {spectral.spec.n_fft}, hop {spectral.spec.hop} in its "
                         "inputs; refit it")


def _check_format(card: dict, card_path: Path) -> None:
    fmt = card.get("format")
    if fmt is None and (card_path.parent / f"{card_path.stem}.joblib").is_file():
        sk = card.get("versions", {}).get("scikit-learn", "?")
        raise ModelError(f"{card_path.parent / card_path.stem}.joblib is a pickled bundle of an older release; "
                         f"convert it with scikit-learn {sk} installed: dramapic-subs-train export --models "
                         f"{card_path.parent}")
    if fmt != estimators.FORMAT:
        raise ModelError(f"{card_path}: bundle format {fmt} is not one this dramapic-subs reads (format "
                         f"{estimators.FORMAT}); use the release that wrote it, or re-export it with this one")


def default_models_dir() -> Path:
    """``$DRAMAPIC_MODELS``, else the bundles installed with the package, else ``models/`` of a checkout."""
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    spec = importlib.util.find_spec("dramapic_subs.bundled_models")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "models"
