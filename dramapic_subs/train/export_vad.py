"""Export Silero VAD's 16 kHz weights from the ``silero-vad`` wheel to ``models/silero_vad.npz``.

Training-time only: the wheel's ``silero_vad.onnx`` is read with the
``onnx`` package (no torch, no onnxruntime) and its 16 kHz branch's arrays
are saved under the names :mod:`dramapic_subs.vad` uses. Install the wheel
without its dependencies (they pull torch): ``pip install --no-deps
silero-vad==6.2.3 onnx``.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..models import write_npz
from ..vad import WEIGHT_NAMES

SILERO_VERSION = "6.2.3"
_BRANCH = "If_0_then_branch__Inline_0__"  # the graph's 16 kHz branch (the else branch is 8 kHz)
_RENAME = {
    "stft.forward_basis_buffer": "stft_conv.weight",
    "encoder.0.reparam_conv": "conv1", "encoder.1.reparam_conv": "conv2",
    "encoder.2.reparam_conv": "conv3", "encoder.3.reparam_conv": "conv4",
    "decoder.rnn.": "lstm_cell.", "decoder.decoder.2": "final_conv",
}


def silero_package_dir() -> Path:
    """Folder of the installed ``silero_vad`` package, found without importing it (which needs torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"silero-vad is not installed: pip install --no-deps silero-vad=={SILERO_VERSION} onnx")
    return Path(list(spec.submodule_search_locations)[0])


def read_onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """The 16 kHz network's arrays from Silero's ONNX graph, named as in :data:`WEIGHT_NAMES`."""
    import onnx
    from onnx import numpy_helper

    found: dict[str, np.ndarray] = {}

    def walk(graph) -> None:
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                elif attr.type == onnx.AttributeProto.TENSOR and node.output[0].startswith(_BRANCH):
                    found[node.output[0][len(_BRANCH):]] = numpy_helper.to_array(attr.t)

    walk(onnx.load(str(path)).graph)
    out = {}
    for name, arr in found.items():
        for old, new in _RENAME.items():
            if name.startswith(old):
                out[new + name[len(old):]] = arr.astype(np.float32)
    missing = [k for k in WEIGHT_NAMES if k not in out]
    if missing:
        raise ModelError(f"{path}: no {', '.join(missing)} in the graph (another Silero version?)")
    return {k: out[k] for k in WEIGHT_NAMES}


def export(out_dir: Path) -> Path:
    """Write ``silero_vad.npz`` and its licence into ``out_dir``; return the npz path."""
    pkg = silero_package_dir()
    arrays = read_onnx_weights(pkg / "data" / "silero_vad.onnx")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "silero_vad.npz"
    if not _same_arrays(path, arrays):  # a bundle's card holds the file's sha256: leave equal weights alone
        write_npz(path, arrays)  # fixed time stamps: the same weights give the same bytes
    licence = next(pkg.parent.glob("silero_vad-*.dist-info/licenses/LICENSE"), None)
    if licence is not None:
        shutil.copyfile(licence, out_dir / "silero_vad.LICENSE.txt")
    return path


def _same_arrays(path: Path, arrays: dict[str, np.ndarray]) -> bool:
    """Whether ``path`` already holds exactly these arrays."""
    if not path.is_file():
        return False
    with np.load(path, allow_pickle=False) as z:
        return set(z.files) == set(arrays) and all(np.array_equal(z[k], v) for k, v in arrays.items())
