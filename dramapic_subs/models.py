"""Model bundles: a fitted scikit-learn estimator plus everything needed to use it.

A bundle is two files in ``models/``: ``NAME.joblib`` (the estimator) and
``NAME.json`` (labels, n_fft, hop, feature names, sample rate, smoothing,
training-data summary, library versions and the sha256 of the joblib file).
:func:`load_bundle` checks that hash *before* unpickling, because unpickling
an altered file can run arbitrary code.
"""
from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .features import FeatureSpec
from .representations import Representation, Spectral, from_card, sha256_of

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
    estimator : sklearn estimator
        Fitted; ``predict_proba`` columns follow ``labels``.
    labels : list of str
    spec : FeatureSpec
        n_fft and sample rate the features must be computed with.
    smooth : int
        Width in windows of the centred moving average over probabilities.
    meta : dict
        Training summary, scores and library versions (free-form, JSON).
    inputs : tuple of Representation
        What the estimator's columns are, in order; empty means the spectral
        features at ``spec`` alone.
    temperature : float
        Calibration: probabilities are ``softmax(log(p) / temperature)``,
        ``temperature`` fitted on grouped out-of-fold predictions.
    """

    name: str
    estimator: Any
    labels: list[str]
    spec: FeatureSpec
    smooth: int = 1
    meta: dict = field(default_factory=dict)
    inputs: tuple[Representation, ...] = ()
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.inputs:
            self.inputs = (Spectral(self.spec),)

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
        from threadpoolctl import threadpool_limits

        # A few hundred windows predict in milliseconds on one thread; OpenMP's
        # thread start-up on a busy machine stalled gradient boosting for seconds.
        with threadpool_limits(limits=1, user_api="openmp"):
            proba = self.estimator.predict_proba(X)
        order = [list(self.estimator.classes_).index(lab) for lab in self.labels]
        return calibrate(proba[:, order], temperature=self.temperature)


def calibrate(proba: np.ndarray, *, temperature: float) -> np.ndarray:
    """Temperature scaling of probabilities: ``softmax(log(p) / T)`` row by row (T > 1 softens)."""
    if temperature == 1.0 or len(proba) == 0:
        return proba
    logits = np.log(np.clip(proba, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def save_bundle(bundle: ModelBundle, directory: Path) -> Path:
    """Write ``NAME.joblib`` and ``NAME.json`` into ``directory``; return the json path."""
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    blob = directory / f"{bundle.name}.joblib"
    joblib.dump(bundle.estimator, blob, compress=3)
    card = {
        "name": bundle.name,
        "labels": bundle.labels,
        "n_fft": bundle.spec.n_fft,
        "hop": bundle.spec.hop,
        "sr": bundle.spec.sr,
        "features": bundle.feature_names,
        "inputs": [rep.card() for rep in bundle.inputs],
        "temperature": bundle.temperature,
        "smooth": bundle.smooth,
        "sha256": sha256_of(blob),
        **bundle.meta,
    }
    path = directory / f"{bundle.name}.json"
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_bundle(name: str, *, directory: Path | None = None) -> ModelBundle:
    """Load a bundle, refusing it if its hash or feature list does not match.

    Raises
    ------
    ModelError
        Missing files, a sha256 mismatch (altered or corrupt file), or
        features this version of the code does not compute.
    """
    import joblib

    directory = directory or default_models_dir()
    card_path, blob = directory / f"{name}.json", directory / f"{name}.joblib"
    if not card_path.is_file() or not blob.is_file():
        raise ModelError(f"model '{name}' not found in {directory} (run: dramapic-subs-train)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc})") from None
    if sha256_of(blob) != card.get("sha256"):
        raise ModelError(f"{blob}: sha256 does not match {card_path.name}; refusing to load an altered model")
    spec = FeatureSpec(n_fft=int(card["n_fft"]), sr=int(card["sr"]))
    inputs = [from_card(entry, directory=directory) for entry in card.get("inputs", [])] or [Spectral(spec)]
    if card.get("features") != [n for rep in inputs for n in rep.names]:
        raise ModelError(f"{blob}: trained on other features than this version computes; retrain it")
    estimator = joblib.load(blob)
    fixed = {"name", "labels", "n_fft", "hop", "sr", "features", "smooth", "sha256", "inputs", "temperature"}
    return ModelBundle(
        name=name,
        estimator=estimator,
        labels=list(card["labels"]),
        spec=spec,
        smooth=int(card.get("smooth", 1)),
        meta={k: v for k, v in card.items() if k not in fixed},
        inputs=tuple(inputs),
        temperature=float(card.get("temperature", 1.0)),
    )


def default_models_dir() -> Path:
    """``$DRAMAPIC_MODELS``, else the bundles installed with the package, else ``models/`` of a checkout."""
    if os.environ.get(MODELS_ENV):
        return Path(os.environ[MODELS_ENV])
    spec = importlib.util.find_spec("dramapic_subs.bundled_models")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parent.parent / "models"


def smooth_probabilities(proba: np.ndarray, *, width: int, valid: np.ndarray) -> np.ndarray:
    """Centred moving average of probabilities over neighbouring valid windows.

    Silent windows neither receive nor contribute probability mass, so a
    pause does not drag the neighbouring speech towards its own guess.

    Parameters
    ----------
    proba : np.ndarray, shape (n, k)
    width : int
        Odd number of windows averaged; 1 means no smoothing.
    valid : np.ndarray of bool, shape (n,)
        Windows that were classified (not silent).
    """
    if width <= 1 or len(proba) == 0:
        return proba
    half = width // 2
    kernel = np.ones(2 * half + 1)
    mask = valid.astype(float)
    masked = np.where(valid[:, None], proba, 0.0)  # NaN rows of silent windows must not spread
    n = len(proba)

    def window_sum(x: np.ndarray) -> np.ndarray:  # "same" breaks when n < width
        return np.convolve(x, kernel, mode="full")[half:half + n]

    num = np.stack([window_sum(masked[:, j]) for j in range(proba.shape[1])], axis=1)
    den = window_sum(mask)[:, None]
    out = np.where(den > 0, num / np.maximum(den, 1e-12), proba)
    out[~valid] = proba[~valid]
    return out
