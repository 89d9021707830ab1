"""Real FFTs for the analysis: scipy's pocketfft, reached without importing ``scipy.fft``.

``import scipy.fft`` costs 0.2-0.3 s (scipy 1.14+ loads its array-API layer,
and scipy.special with it), about a third of the CLI's start-up, while the
analysis needs only a forward and an inverse real FFT along one axis. Both are
functions of the compiled ``pypocketfft`` module inside scipy's package, which
loads on its own in about a millisecond. :func:`rfft` and :func:`irfft` make
the very calls ``scipy.fft.rfft`` / ``scipy.fft.irfft`` make for these
arguments (norm "backward", one worker), so results are bit-identical
(tests/test_fft.py). Where a scipy release keeps that module elsewhere or
changes its signature, ``scipy.fft`` itself is used.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np

_PRIVATE = "scipy.fft._pocketfft.pypocketfft"
_INORM_NONE, _INORM_N = 0, 2  # pocketfft's scaling codes: none (forward), 1/n (inverse)
_FLOATS = (np.float32, np.float64, np.complex64, np.complex128)


def _pocketfft() -> ModuleType | None:
    """scipy's compiled pocketfft module, loaded from its file without running scipy's package code."""
    if _PRIVATE in sys.modules:  # scipy.fft already imported (e.g. by librosa in training): share it
        return sys.modules[_PRIVATE]
    spec = importlib.util.find_spec("scipy")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "fft" / "_pocketfft"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"pypocketfft{suffix}"
        if path.is_file():
            loader = importlib.machinery.ExtensionFileLoader("pypocketfft", str(path))
            module = importlib.util.module_from_spec(importlib.util.spec_from_loader("pypocketfft", loader))
            loader.exec_module(module)
            return module
    return None


def _float(x: np.ndarray) -> np.ndarray:
    """scipy's input conversion: float and complex arrays as they are, anything else as float64."""
    x = np.asarray(x)
    return x if x.dtype.type in _FLOATS else x.astype(np.float64)


def _bind() -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    try:
        pocket = _pocketfft()
        if pocket is not None:
            def rfft(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
                return pocket.r2c(_float(x), (axis,), True, _INORM_NONE, None, 1)

            def irfft(x: np.ndarray, n: int, *, axis: int = -1) -> np.ndarray:
                x = _float(x)
                if x.shape[axis] != n // 2 + 1:
                    raise ValueError(f"irfft of {n} points needs {n // 2 + 1} bins on axis {axis}, "
                                     f"got {x.shape[axis]}")
                if not np.iscomplexobj(x):
                    x = x + 0j  # as scipy does
                return pocket.c2r(x, (axis,), n, False, _INORM_N, None, 1)

            probe = np.arange(8, dtype=np.float32)  # the private signature still holds
            if np.allclose(irfft(rfft(probe), 8), probe):
                return rfft, irfft
    except Exception:  # noqa: BLE001 - any surprise in scipy's private module: use the public one
        pass
    import scipy.fft

    def rfft_public(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
        return scipy.fft.rfft(x, axis=axis, workers=1)

    def irfft_public(x: np.ndarray, n: int, *, axis: int = -1) -> np.ndarray:
        return scipy.fft.irfft(x, n, axis=axis, workers=1)

    return rfft_public, irfft_public


rfft, irfft = _bind()
rfft.__doc__ = """Real forward FFT along ``axis`` (unnormalised), as ``scipy.fft.rfft(x, axis=axis, workers=1)``."""
irfft.__doc__ = """Inverse real FFT of ``n`` points along ``axis`` (scaled by 1/n), as ``scipy.fft.irfft``.

``x`` must hold exactly ``n // 2 + 1`` bins on that axis (the analysis never pads or crops here)."""

__all__ = ["rfft", "irfft"]
