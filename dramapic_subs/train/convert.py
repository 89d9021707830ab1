"""One-off conversion of pickled ``NAME.joblib`` bundles (releases up to 0.1.0) to ``NAME.npz``.

Unpickling needs the scikit-learn that wrote the file (the card's
``versions``), and runs code, so the joblib file's sha256 is checked against
its card first, as the old loader did.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from ..models import bundle_from_card, read_card, save_bundle, sha256_file


def joblib_to_npz(name: str, *, directory: Path, keep: bool = False) -> Path:
    """Convert one bundle in place; return the new card's path.

    Parameters
    ----------
    name : str
        ``sound_type`` or ``gender``.
    directory : Path
        Holds ``NAME.joblib`` and its ``NAME.json`` card; the card is
        rewritten (format, sha256 of the npz), its metadata kept.
    keep : bool
        Keep the ``.joblib`` file (by default it is removed once the npz is written).

    Raises
    ------
    ModelError
        No pickled bundle, a sha256 mismatch, or an estimator the npz format cannot hold.
    """
    import joblib

    blob, card = directory / f"{name}.joblib", read_card(directory / f"{name}.json")
    if not blob.is_file():
        raise ModelError(f"{blob} not found: nothing to convert")
    if sha256_file(blob) != card.get("sha256"):
        raise ModelError(f"{blob}: sha256 does not match {name}.json; refusing to unpickle an altered model")
    path = save_bundle(bundle_from_card(card, joblib.load(blob), directory=directory), directory)  # export checks parity
    if not keep:
        blob.unlink()
    return path
