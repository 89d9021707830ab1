"""Export Resemblyzer's pretrained voice encoder to numpy for :mod:`dramapic_subs.embedding`.

Training-time only: reads ``resemblyzer/pretrained.pt`` from the installed
``resemblyzer`` wheel with torch, and writes into ``models/``:

* ``speaker_encoder.npz``: the LSTM and linear weights, stored as float16
  (2.9 MB instead of 5.7 MB; :mod:`dramapic_subs.embedding` computes in
  float32, and embeddings stay within cosine 0.99999 of the float32 torch
  model, see ``benchmarks/embedding_parity.py``), names as in the PyTorch
  state dict, uncompressed (``np.savez`` output is byte-for-byte
  reproducible, so a re-export gives the same sha256);
* ``speaker_encoder.LICENSE.txt``: the wheel's licence (Apache-2.0);
* ``speaker_encoder.json``: a card with the sha256 of the npz, the source
  wheel and its version, the shapes and the front end's settings.

Needs ``pip install torch resemblyzer`` in a separate environment; the
product itself never imports torch.
"""
from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np

from ..checksums import sha256_file
from ..embedding import (
    ENCODER_NAME,
    HIDDEN,
    HOP,
    N_FFT,
    N_LAYERS,
    N_MELS,
    PARTIAL_FRAMES,
    SR,
    TARGET_DBFS,
)
from ..errors import ModelError

_KEYS = [f"lstm.{kind}_l{k}" for k in range(N_LAYERS)
         for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")] + ["linear.weight", "linear.bias"]


def resemblyzer_files() -> tuple[Path, Path, str]:
    """``pretrained.pt``, the licence file and the version of the installed resemblyzer wheel.

    Raises
    ------
    ModelError
        If resemblyzer is not installed or its wheel lacks either file.
    """
    try:
        dist = metadata.distribution("resemblyzer")
    except metadata.PackageNotFoundError:
        raise ModelError("resemblyzer is not installed (pip install torch resemblyzer)") from None
    files = [Path(str(f)) for f in dist.files or []]
    weights = [f for f in files if f.name == "pretrained.pt"]
    licences = [f for f in files if f.name.upper().startswith(("LICENSE", "LICENCE"))]
    if not weights or not licences:
        raise ModelError("the resemblyzer wheel lacks pretrained.pt or its LICENSE")
    return Path(dist.locate_file(weights[0])), Path(dist.locate_file(licences[0])), dist.version


def read_state(pt_path: Path) -> dict[str, np.ndarray]:
    """The encoder's weights from a Resemblyzer checkpoint, as float32 numpy arrays.

    Raises
    ------
    ModelError
        Without torch, or if the checkpoint lacks a weight.
    """
    try:
        import torch
    except ImportError:
        raise ModelError("torch is needed to read pretrained.pt (export in a separate environment: "
                         "pip install torch resemblyzer)") from None

    checkpoint = torch.load(pt_path, map_location="cpu")
    state = checkpoint.get("model_state", checkpoint)
    missing = [k for k in _KEYS if k not in state]
    if missing:
        raise ModelError(f"{pt_path}: checkpoint lacks {', '.join(missing)}")
    # similarity_weight / similarity_bias (GE2E training's scale) are not used for embedding.
    return {k: state[k].detach().cpu().numpy().astype(np.float32) for k in _KEYS}


def export_encoder(out_dir: Path, *, dtype: str = "float16") -> Path:
    """Write the npz, licence and card into ``out_dir``; return the card's path.

    Parameters
    ----------
    out_dir : Path
        Usually ``models/``.
    dtype : {"float16", "float32"}, keyword-only
        Storage type of the weights.
    """
    if dtype not in ("float16", "float32"):
        raise ModelError(f"dtype must be float16 or float32, got {dtype}")
    pt_path, licence, version = resemblyzer_files()
    weights = read_state(pt_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    npz = out_dir / f"{ENCODER_NAME}.npz"
    np.savez(npz, **{k: w.astype(dtype) for k, w in weights.items()})
    shutil.copyfile(licence, out_dir / f"{ENCODER_NAME}.LICENSE.txt")  # byte for byte, as the wheel ships it
    card = {
        "name": ENCODER_NAME,
        "source": f"resemblyzer {version} (PyPI wheel), resemblyzer/pretrained.pt",
        "license": "Apache-2.0 (see speaker_encoder.LICENSE.txt)",
        "source_sha256": sha256_file(pt_path),
        "sha256": sha256_file(npz),
        "dtype": dtype,
        "parameters": int(sum(w.size for w in weights.values())),
        "shapes": {k: list(w.shape) for k, w in weights.items()},
        "front_end": {"sr": SR, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "mel": "librosa Slaney, power (not log)",
                      "partial_frames": PARTIAL_FRAMES, "volume_target_dbfs": TARGET_DBFS},
        "network": {"lstm_layers": N_LAYERS, "hidden": HIDDEN, "embedding": "linear 256->256, ReLU, L2 norm"},
        # The wheel does not say; the encoder comes from Real-Time-Voice-Cloning, whose
        # encoder was trained on these corpora. Matters for dev: LibriSpeech speakers may be known to it.
        "trained_on": "not stated in the wheel; Real-Time-Voice-Cloning's encoder (its origin) was trained on "
                      "LibriSpeech train-other-500, VoxCeleb1 and VoxCeleb2",
    }
    card_path = out_dir / f"{ENCODER_NAME}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card_path


def main() -> None:
    """``python -m dramapic_subs.train.embedding_export [OUT_DIR] [--dtype float16|float32]``.

    For an environment with torch and resemblyzer but without the CLI's
    dependencies (``dramapic-subs-train export-encoder`` does the same).
    """
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", type=Path, default=Path("models"))
    ap.add_argument("--dtype", default="float16", choices=("float16", "float32"))
    args = ap.parse_args()
    print(export_encoder(args.out_dir, dtype=args.dtype))


if __name__ == "__main__":
    main()
