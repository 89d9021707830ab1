"""Parity of the numpy speaker encoder with Resemblyzer's torch ``VoiceEncoder`` on real dev speech.

Needs torch and resemblyzer, so run it in a separate environment, with this
checkout on the path:

    python -m venv /work/venv-torch && . /work/venv-torch/bin/activate
    pip install torch==2.13.0 resemblyzer soundfile
    PYTHONPATH=. python benchmarks/embedding_parity.py [--files 12] [--out reports/embedding_parity.json]

For each file (spread over the dev speech sources): volume normalised as
Resemblyzer's ``preprocess_wav`` (webrtcvad trimming skipped, as in the
product), then ``VoiceEncoder.embed_utterance(return_partials=True)``; the
same partials go through :class:`dramapic_subs.embedding.SpeakerEncoder`
with the shipped weights (``models/speaker_encoder.npz``, float16), from
our own mel front end and from librosa's mels, and with the float32 weights
read from the wheel's ``pretrained.pt``. Reported: cosine similarity per
partial (min, median, mean) and the mel front end's largest relative error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dramapic_subs.embedding import SpeakerEncoder, load_encoder, normalize_volume  # noqa: E402
from dramapic_subs.media import read_audio  # noqa: E402
from dramapic_subs.train.embedding_export import read_state, resemblyzer_files  # noqa: E402
from dramapic_subs.train.tables import read_manifest  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SOURCES = ("emotiontts_open_db", "emodb", "librispeech_resemblyzer")


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _pick(data: Path, n_per_source: int) -> list[dict]:
    rows = [r for r in read_manifest(data, "dev") if r["category"] == "speech" and r["source"] in SOURCES]
    picked = []
    for s in SOURCES:
        of = [r for r in rows if r["source"] == s]
        picked += of[:: max(1, len(of) // n_per_source)][:n_per_source]
    return picked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--files", type=int, default=12, help="files per dev source")
    ap.add_argument("--weights", type=Path, default=ROOT / "models" / "speaker_encoder.npz")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch
    from resemblyzer import VoiceEncoder, audio

    torch.set_num_threads(1)
    ref = VoiceEncoder("cpu", verbose=False)
    ours = load_encoder(args.weights)
    full = SpeakerEncoder(read_state(resemblyzer_files()[0]))

    cos_own, cos_lib, cos_full, mel_err, n_partials = [], [], [], [], 0
    for row in _pick(args.data, args.files):
        wav = normalize_volume(read_audio(args.data / row["path"], sr=16000))
        _, partials_ref, wav_slices = ref.embed_utterance(wav, return_partials=True)
        _, mel_slices = ref.compute_partial_slices(len(wav), 1.3, 0.75)
        wav = np.pad(wav, (0, max(0, wav_slices[-1].stop - len(wav))))
        mel_lib = audio.wav_to_mel_spectrogram(wav)
        mel_own = ours.mel_frames(wav)
        mel_err.append(float(np.abs(mel_own - mel_lib).max() / (np.abs(mel_lib).max() + 1e-12)))
        own = np.stack([mel_own[s] for s in mel_slices])
        lib = np.stack([mel_lib[s] for s in mel_slices])
        cos_own.append(_cos(ours.embed_mels(own), partials_ref))
        cos_lib.append(_cos(ours.embed_mels(lib), partials_ref))
        cos_full.append(_cos(full.embed_mels(own), partials_ref))
        n_partials += len(partials_ref)

    def stats(parts: list[np.ndarray]) -> dict:
        v = np.concatenate(parts)
        return {"min": float(v.min()), "median": float(np.median(v)), "mean": float(v.mean())}

    result = {
        "files": len(cos_own), "partials": n_partials,
        "torch": torch.__version__, "librosa": __import__("librosa").__version__,
        "shipped_dtype": str(np.load(args.weights)["linear.bias"].dtype),
        "cosine_shipped_weights_numpy_mels": stats(cos_own),
        "cosine_shipped_weights_librosa_mels": stats(cos_lib),
        "cosine_float32_weights_numpy_mels": stats(cos_full),
        "mel_max_relative_error": float(max(mel_err)),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result["cosine_shipped_weights_numpy_mels"]["min"] < 0.999:
        raise SystemExit("parity below 0.999 cosine")


if __name__ == "__main__":
    main()
