"""Percentages that mean what they say: temperature scaling, ECE and reliability diagrams.

A caption's "speech 90%" should be right about 90% of the time, on sound
like the training pool's and on sound the model never heard. The temperature
is fitted on grouped out-of-fold predictions, half out of corpus and half in
corpus (:func:`dramapic_subs.train.loco.two_view_temperature`), never on dev, and applied by the product
as ``softmax(log(p) / T)`` (:func:`dramapic_subs.models.calibrate`).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..models import calibrate

N_BINS = 10


def fit_temperature(proba: np.ndarray, y_idx: np.ndarray, *, weights: np.ndarray | None = None) -> float:
    """The temperature (0.25-8) that minimises the (weighted) negative log-likelihood."""
    w = np.ones(len(y_idx)) if weights is None else weights

    def nll(log_t: float) -> float:
        p = calibrate(proba, temperature=float(np.exp(log_t)))
        return float(-(w * np.log(np.clip(p[np.arange(len(y_idx)), y_idx], 1e-12, 1.0))).sum() / w.sum())

    res = minimize_scalar(nll, bounds=(np.log(0.25), np.log(8.0)), method="bounded")
    return float(np.exp(res.x))


def reliability(proba: np.ndarray, y_idx: np.ndarray, *, n_bins: int = N_BINS) -> dict:
    """Confidence of the top label against how often it is right, in equal-width confidence bins.

    Returns
    -------
    dict
        ``ece`` (expected calibration error: the count-weighted mean gap
        between confidence and accuracy), and per bin ``confidence``,
        ``accuracy`` and ``count`` (empty bins are left out).
    """
    conf = proba.max(axis=1)
    right = proba.argmax(axis=1) == y_idx
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    bins = {"confidence": [], "accuracy": [], "count": []}
    ece = 0.0
    for b in range(n_bins):
        m = which == b
        if not m.any():
            continue
        bins["confidence"].append(float(conf[m].mean()))
        bins["accuracy"].append(float(right[m].mean()))
        bins["count"].append(int(m.sum()))
        ece += m.sum() / len(conf) * abs(conf[m].mean() - right[m].mean())
    return {"ece": float(ece), "n": int(len(conf)), **bins}


def reliability_plot(curves: dict[str, dict], path) -> None:
    """One panel per model; each curve a :func:`reliability` result, labelled with its ECE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({k.split(":")[0] for k in curves})
    fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 4.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        for key, r in curves.items():
            if key.split(":")[0] == model:
                ax.plot(r["confidence"], r["accuracy"], marker="o", label=f"{key.split(':', 1)[1]} (ECE {r['ece']:.3f})")
        ax.set(title=model, xlabel="confidence of the top label", ylabel="share right", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
