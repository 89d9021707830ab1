"""Fitted classifiers as plain numpy arrays, and their predictions in numpy.

A pickled scikit-learn estimator only loads in the scikit-learn (and numpy,
scipy) it was saved with, and unpickling runs code. :func:`export` turns the
estimators the training ships into a flat ``{name: array}`` dict, stored as an
``.npz`` that ``np.load(..., allow_pickle=False)`` reads on any numpy;
:class:`NumpyClassifier` rebuilds the classifier from those arrays and
reproduces scikit-learn's ``predict_proba`` without importing it (multi-class
boosted trees to the bit, each row the same in a batch of any size; the rest
to ~1e-15, ~1e-7 where scikit-learn itself computes in float32, as for
float32 rows into a binary logistic output).

Supported, nested in any combination: ``Pipeline`` (``StandardScaler`` steps,
then a classifier), ``HistGradientBoostingClassifier`` (numerical splits,
missing values), ``LogisticRegression`` (binary, multinomial, one-vs-rest),
``MLPClassifier`` and ``VotingClassifier(voting="soft")``. Anything else is
refused at export with a :class:`ModelError`, never silently approximated.

Array names are paths: ``kind`` of the root, ``0.kind`` / ``0.mean`` of its
first part, ``1.2.threshold`` of the third part of the second, and so on.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from .errors import ModelError

FORMAT = 1  # bump when the array layout changes; the card records it
PARITY_TOL = 1e-9  # export refuses an estimator it cannot reproduce this closely


# --- numpy inference ----------------------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)  # no overflow for large logits
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _expit(z: np.ndarray) -> np.ndarray:
    # Two branches so that neither exp overflows; scipy.special.expit to rounding.
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _binary_or_softmax(z: np.ndarray) -> np.ndarray:
    """One logit column -> [1-p, p]; several -> softmax (as scikit-learn's losses do)."""
    if z.shape[1] == 1:
        p = _expit(z[:, 0])
        return np.stack([1.0 - p, p], axis=1)
    return _softmax(z)


class _Part:
    """One node of a model: a transform (``transform``) or a classifier (``predict_proba``)."""

    def __init__(self, arrays: Mapping[str, np.ndarray], prefix: str) -> None:
        self._arrays, self._prefix = arrays, prefix
        self.read()

    def read(self) -> None:
        """Take this part's arrays (subclasses)."""

    def parts(self) -> list[Any]:
        """The nested parts (pipeline steps, vote members), from ``n`` and their prefixes."""
        return [_load(self._arrays, f"{self._prefix}{i}.") for i in range(int(self.get("n")))]

    def get(self, name: str) -> np.ndarray:
        key = self._prefix + name
        if key not in self._arrays:
            raise ModelError(f"the bundle lacks the array '{key}' (exported by another version?)")
        return np.asarray(self._arrays[key])


class _Scaler(_Part):
    def read(self) -> None:
        self.mean, self.scale = self.get("mean"), self.get("scale")
        self.stats_in_x_dtype = bool(self.get("stats_in_x_dtype"))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return _standardize(X, self.mean, self.scale, stats_in_x_dtype=self.stats_in_x_dtype)


def _standardize(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, *, stats_in_x_dtype: bool) -> np.ndarray:
    """``(X - mean) / scale`` rounded as scikit-learn rounds it: float32 rows stay float32, and
    the statistics are cast to float32 first (scikit-learn 1.9) or not (1.3), as the exporter's did."""
    out = X.copy()
    out -= mean.astype(X.dtype) if stats_in_x_dtype else mean
    out /= scale.astype(X.dtype) if stats_in_x_dtype else scale
    return out


class _Trees(_Part):
    """Gradient-boosted trees, all walked at once: one gather per depth level, not per sample.

    Siblings sit side by side (left at ``child``, right at ``child + 1``) and a
    leaf is its own child, behind a +inf threshold, so one step is
    ``node = child[node] + (x > threshold[node])`` for every tree alike.
    """

    CHUNK = 64  # rows per pass: the (trees x rows) node table stays in cache (2.5x faster than all rows)

    def read(self) -> None:
        self.baseline = self.get("baseline").astype(float).ravel()
        roots, depth = self.get("roots").astype(np.int32), self.get("tree_depth").astype(int)
        k, n_trees = len(self.baseline), len(roots)
        if n_trees % k:
            raise ModelError(f"{n_trees} trees do not split into {k} per iteration")
        # Deepest trees first: level L only steps the trees deeper than L, a leading block.
        order = np.argsort(-depth, kind="stable")
        self.roots, self.active = roots[order], [int((depth > lev).sum()) for lev in range(int(depth.max(initial=0)))]
        self.unsort = np.argsort(order)  # back to storage order: iteration by iteration, class by class
        # One 16-byte record per node: a single gather per level fetches all three. A plain structured
        # array, not np.recarray: a recarray's attribute access runs Python code on every call.
        self.node = np.empty(len(self.get("feature")), dtype=[("feature", np.int32), ("child", np.int32),
                                                               ("threshold", float)])
        self.node["feature"], self.node["child"] = self.get("feature"), self.get("child")
        self.node["threshold"] = self.get("threshold")
        self.missing_left = self.get("missing_left").astype(bool)
        self.value = self.get("value").astype(float)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = X.astype(np.float64, copy=False)  # scikit-learn's trees compare in float64
        raw = np.concatenate([self._raw(X[i:i + self.CHUNK]) for i in range(0, max(len(X), 1), self.CHUNK)])
        return _binary_or_softmax(raw)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        node = np.repeat(self.roots[:, None], len(X), axis=1)  # (trees, rows)
        flat, offset = X.ravel(), (np.arange(len(X)) * X.shape[1])[None, :]
        has_nan = bool(np.isnan(X).any())
        for m in self.active:
            nd = self.node[node[:m]]
            x = flat[offset + nd["feature"]]
            right = x > nd["threshold"]
            if has_nan:  # NaN compares False: it goes where the split sends missing values
                right |= np.isnan(x) & ~self.missing_left[node[:m]]
            node[:m] = nd["child"] + right
        # Summed in scikit-learn's order (the baseline, then iteration by iteration): a row's sum is then
        # the same whatever the rows beside it (a matrix product's rounding depends on the batch's shape).
        k = len(self.baseline)
        terms = np.empty((len(self.unsort) // k + 1, k, len(X)))  # the baseline, then each iteration's trees
        terms[0] = self.baseline[:, None]
        terms[1:] = self.value[node[self.unsort]].reshape(-1, k, len(X))
        # A running sum: np.add.reduce would sum a lone row's contiguous terms pairwise instead.
        return np.add.accumulate(terms, axis=0)[-1].T


class _Linear(_Part):
    def read(self) -> None:
        # Stored in the dtype scikit-learn fitted (float32 on float32 rows), so products round alike.
        self.coef, self.intercept = self.get("coef"), self.get("intercept")
        self.ovr = bool(self.get("ovr"))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = X @ self.coef.T + self.intercept
        if self.ovr and z.shape[1] > 1:  # one-vs-rest: independent sigmoids, renormalised
            p = _expit(z)
            return p / p.sum(axis=1, keepdims=True)
        return _binary_or_softmax(z)


_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda z: z, "relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh, "logistic": _expit}


class _MLP(_Part):
    def read(self) -> None:
        n_layers = int(self.get("n_layers"))
        self.weights = [self.get(f"w{i}") for i in range(n_layers)]
        self.biases = [self.get(f"b{i}") for i in range(n_layers)]
        self.hidden, out = str(self.get("activation")), str(self.get("out_activation"))
        if self.hidden not in _ACTIVATIONS or out not in ("softmax", "logistic"):
            raise ModelError(f"MLP activations '{self.hidden}'/'{out}' are not supported")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        a = X
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ w + b
            if i < len(self.weights) - 1:
                a = _ACTIVATIONS[self.hidden](a)
        return _binary_or_softmax(a)


class _Vote(_Part):
    """Soft vote: the (weighted) mean of the members' probabilities."""

    def read(self) -> None:
        self.members = self.parts()
        weights = self.get("weights").astype(float)
        self.weights = weights if weights.size else None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.average([m.predict_proba(X) for m in self.members], axis=0, weights=self.weights)


class _Chain(_Part):
    """A pipeline: transforms, then the last part's probabilities."""

    def read(self) -> None:
        self.steps = self.parts()
        if not self.steps or not hasattr(self.steps[-1], "predict_proba"):
            raise ModelError("a pipeline must end with a classifier")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        for step in self.steps[:-1]:
            X = step.transform(X)
        return self.steps[-1].predict_proba(X)


_KINDS: dict[str, type[_Part]] = {"pipeline": _Chain, "scaler": _Scaler, "hgb": _Trees, "logreg": _Linear,
                                  "mlp": _MLP, "vote": _Vote}


def _load(arrays: Mapping[str, np.ndarray], prefix: str) -> Any:
    kind = str(_Part(arrays, prefix).get("kind"))
    if kind not in _KINDS:
        raise ModelError(f"estimator kind '{kind}' is not supported by this version "
                         f"(it reads {', '.join(sorted(_KINDS))})")
    return _KINDS[kind](arrays, prefix)


class NumpyClassifier:
    """A classifier rebuilt from :func:`export`'s arrays; needs numpy only.

    Parameters
    ----------
    arrays : mapping of str to np.ndarray
        As returned by :func:`export` or read from its ``.npz``.

    Attributes
    ----------
    classes_ : np.ndarray of str
        Labels of the ``predict_proba`` columns, in order.
    n_features_in_ : int
        Columns ``predict_proba`` expects.

    Raises
    ------
    ModelError
        An unknown estimator kind, a missing array, or arrays that do not fit together.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        top = _Part(arrays, "")
        self._root = _load(arrays, "")
        self.classes_, self.n_features_in_ = top.get("classes").astype(str), int(top.get("n_features"))
        try:  # one dry row: shapes that do not chain fail here, at load, not mid-analysis
            probe = self.predict_proba(np.zeros((1, self.n_features_in_)))
        except (ValueError, IndexError) as exc:
            raise ModelError(f"the bundle's arrays do not fit together ({exc})") from None
        if probe.shape != (1, len(self.classes_)):
            raise ModelError(f"the bundle gives {probe.shape[1]} probabilities for {len(self.classes_)} classes")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : np.ndarray, shape (n_samples, n_features_in_)
            Feature rows, float32 or float64 (NaN allowed where trees handle missing values).

        Returns
        -------
        np.ndarray, shape (n_samples, n_classes)
            Columns ordered as ``classes_``; rows sum to 1.
        """
        X = np.asarray(X)
        # float32 stays float32 where scikit-learn keeps it (scaler, MLP), for equal results.
        return self._root.predict_proba(X if X.dtype in (np.float32, np.float64) else X.astype(np.float64))


# --- export (training side: imports scikit-learn) ----------------------------------------------


def export(estimator: Any, *, check: bool = True) -> dict[str, np.ndarray]:
    """The arrays that rebuild ``estimator`` as a :class:`NumpyClassifier`.

    Parameters
    ----------
    estimator : fitted scikit-learn classifier
        One of the supported kinds (module docstring), possibly nested.
    check : bool
        Rebuild the classifier and compare its probabilities with
        scikit-learn's on 256 synthetic rows; refuse a difference above
        ``PARITY_TOL``.

    Returns
    -------
    dict of str to np.ndarray
        Plain (non-object) arrays, ready for ``np.savez``.

    Raises
    ------
    ModelError
        An unsupported estimator or option, or a failed parity check.
    """
    out: dict[str, np.ndarray] = {}
    _export_part(estimator, "", out)
    out["classes"] = np.asarray(estimator.classes_).astype(str)
    out["n_features"] = np.asarray(int(estimator.n_features_in_))
    if check:
        _check_parity(estimator, NumpyClassifier(out))
    return out


def _export_part(est: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    for cls, fn in _exporters():
        if isinstance(est, cls):
            fn(est, prefix, out)
            return
    raise ModelError(f"cannot export {type(est).__name__}: supported are Pipeline, StandardScaler, "
                     "HistGradientBoostingClassifier, LogisticRegression, MLPClassifier, soft VotingClassifier")


def _exporters() -> list[tuple[type, Callable[[Any, str, dict], None]]]:
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return [(Pipeline, _export_pipeline), (StandardScaler, _export_scaler),
            (HistGradientBoostingClassifier, _export_hgb), (LogisticRegression, _export_logreg),
            (MLPClassifier, _export_mlp), (VotingClassifier, _export_vote)]


def _export_pipeline(est: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    steps = [s for _, s in est.steps if s is not None and s != "passthrough"]
    out[prefix + "kind"], out[prefix + "n"] = np.asarray("pipeline"), np.asarray(len(steps))
    for i, step in enumerate(steps):
        _export_part(step, f"{prefix}{i}.", out)


def _export_scaler(est: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    n = est.n_features_in_
    out[prefix + "kind"] = np.asarray("scaler")
    out[prefix + "mean"] = np.zeros(n) if est.mean_ is None else np.asarray(est.mean_)
    out[prefix + "scale"] = np.ones(n) if est.scale_ is None else np.asarray(est.scale_)
    out[prefix + "stats_in_x_dtype"] = np.asarray(_casts_stats(est, out[prefix + "mean"], out[prefix + "scale"]))


def _casts_stats(est: Any, mean: np.ndarray, scale: np.ndarray) -> bool:
    """Whether this scikit-learn scales float32 rows with float32 statistics (found by trying both)."""
    X = np.random.default_rng(0).normal(size=(64, len(mean))).astype(np.float32) * scale + mean
    X = X.astype(np.float32)
    return bool(np.array_equal(est.transform(X), _standardize(X, mean, scale, stats_in_x_dtype=True)))


def _export_hgb(est: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
        raise ModelError("cannot export HistGradientBoostingClassifier with categorical features")
    trees = [_siblings_side_by_side(p.nodes) for per_iter in est._predictors for p in per_iter]
    sizes = [len(t["value"]) for t in trees]
    roots = np.cumsum([0] + sizes[:-1])
    for t, start in zip(trees, roots):
        t["child"] += start
    out.update({prefix + key: np.concatenate([t[key] for t in trees]) for key in trees[0]})
    out[prefix + "kind"] = np.asarray("hgb")
    out[prefix + "baseline"] = np.asarray(est._baseline_prediction, float).ravel()
    out[prefix + "roots"] = roots.astype(np.int32)
    out[prefix + "tree_depth"] = np.asarray([p.nodes["depth"].max() for it in est._predictors for p in it], np.int32)


def _siblings_side_by_side(nodes: np.ndarray) -> dict[str, np.ndarray]:
    """One scikit-learn tree renumbered breadth first, so each right child follows its left one.

    Leaves get a +inf threshold and themselves as child: a step from a leaf stays there.
    """
    order = [0]
    for i in order:  # grows while iterated: breadth-first walk
        if not nodes[i]["is_leaf"]:
            order += [int(nodes[i]["left"]), int(nodes[i]["right"])]
    new = np.empty(len(nodes), np.int32)
    new[order] = np.arange(len(order))
    nd = nodes[order]
    leaf = nd["is_leaf"].astype(bool)
    return {"feature": np.where(leaf, 0, nd["feature_idx"]).astype(np.int32),
            "threshold": np.where(leaf, np.inf, nd["num_threshold"]).astype(float),
            "missing_left": nd["missing_go_to_left"].astype(bool) | leaf,
            "child": np.where(leaf, np.arange(len(nd)), new[nd["left"]]).astype(np.int32),
            "value": np.where(leaf, nd["value"], 0.0).astype(float)}


def _export_logreg(est: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    multi = len(est.classes_) > 2
    # Before scikit-learn 1.5 multi_class="ovr" (or liblinear) fitted one-vs-rest models.
    ovr = multi and (getattr(est, "multi_class", "auto") == "ovr" or est.solver == "liblinear")
    out[prefix + "kind"], out[prefix + "ovr"] = np.asarray("logreg"), np.asarray(ovr)
    out[prefix + "coef"] = np.asarray(est.coef_)
    out[prefix + "intercept"] = np.asarray(est.intercept_).ravel()


def _export_mlp(est: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    out[prefix + "kind"], out[prefix + "n_layers"] = np.asarray("mlp"), np.asarray(len(est.coefs_))
    out[prefix + "activation"] = np.asarray(est.activation)
    out[prefix + "out_activation"] = np.asarray(est.out_activation_)
    for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        out[f"{prefix}w{i}"], out[f"{prefix}b{i}"] = np.asarray(w), np.asarray(b)


def _export_vote(est: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if est.voting != "soft":
        raise ModelError("cannot export a VotingClassifier with hard voting (it has no probabilities)")
    weights = est._weights_not_none
    out[prefix + "kind"], out[prefix + "n"] = np.asarray("vote"), np.asarray(len(est.estimators_))
    out[prefix + "weights"] = np.asarray([] if weights is None else weights, float)
    for i, member in enumerate(est.estimators_):
        _export_part(member, f"{prefix}{i}.", out)


def _check_parity(estimator: Any, model: NumpyClassifier) -> None:
    """Refuse an export whose probabilities differ from scikit-learn's on synthetic rows."""
    X = _probe_rows(model)
    diff = float(np.max(np.abs(estimator.predict_proba(X) - model.predict_proba(X))))
    if not diff <= PARITY_TOL:
        raise ModelError(f"export of {type(estimator).__name__} differs from scikit-learn by {diff:.2e}")


def _probe_rows(model: NumpyClassifier, n: int = 256) -> np.ndarray:
    """N(0, 2^2) rows, mapped through a leading scaler's spread so they look like real features."""
    z = np.random.default_rng(0).normal(scale=2.0, size=(n, model.n_features_in_))
    first = model._root.steps[0] if isinstance(model._root, _Chain) else None
    return first.mean + z * first.scale if isinstance(first, _Scaler) else z
