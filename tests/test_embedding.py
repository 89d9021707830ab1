"""The shipped speaker encoder (numpy, no torch) on real dev speech.

Parity with Resemblyzer's torch model is checked by
``benchmarks/embedding_parity.py`` in an environment with torch; here the
shipped weights must load, be intact, and behave like a speaker encoder.
"""
from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from dramapic_subs.embedding import (EMBED_DIM, SpeakerEncoder, cosine_distance, load_encoder, normalize_volume,
                                     pool_partials)
from dramapic_subs.errors import ModelError, ParameterError
from dramapic_subs.media import read_audio
from dramapic_subs.models import default_models_dir
from dramapic_subs.windows import make_grid

from .conftest import SR, dev_rows

SPAN = 2 * SR


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return load_encoder()


def _first_seconds(data_dir, row: dict, seconds: float = 2.0) -> np.ndarray:
    y = read_audio(data_dir / row["path"], sr=SR)
    return y[: int(seconds * SR)]


def test_shipped_weights_load_without_torch_and_are_unit_norm(encoder, data_dir):
    row = dev_rows(data_dir, "librispeech_resemblyzer")[0]
    y = read_audio(data_dir / row["path"], sr=SR)
    grid = make_grid(sr=SR)
    spans = [grid.span(i, len(y)) for i in range(grid.n_cues(len(y)))]
    emb = encoder.embed_windows(y, spans)
    assert emb.shape == (len(spans), EMBED_DIM) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert (emb >= 0).all()  # ReLU before the norm
    assert "torch" not in sys.modules


def test_batching_does_not_change_embeddings(encoder, data_dir):
    row = dev_rows(data_dir, "emotiontts_open_db")[0]
    y = read_audio(data_dir / row["path"], sr=SR)[: 6 * SR]
    spans = [(a, a + SPAN) for a in range(0, len(y) - SPAN + 1, SR)]
    together = encoder.embed_windows(y, spans)
    alone = np.vstack([encoder.embed_windows(y, [s]) for s in spans])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_same_speaker_is_closer_than_other_speakers(encoder, data_dir):
    """Three 2 s clips (different sentences) of each of the 7 Korean dev speakers."""
    by_speaker: dict[str, list[dict]] = {}
    for r in dev_rows(data_dir, "emotiontts_open_db"):
        by_speaker.setdefault(r["speaker"], []).append(r)
    assert len(by_speaker) >= 5
    emb, who = [], []
    for spk, rows in sorted(by_speaker.items()):
        for r in rows[:3]:
            y = _first_seconds(data_dir, r)
            emb.append(encoder.embed_windows(y, [(0, len(y))])[0])
            who.append(spk)
    emb, who = np.array(emb), np.array(who)
    dist = 1.0 - emb @ emb.T
    same = (who[:, None] == who[None, :]) & ~np.eye(len(who), dtype=bool)
    assert dist[same].mean() < 0.7 * dist[who[:, None] != who[None, :]].mean()
    nearest = who[np.argmin(dist + 9 * np.eye(len(who)), axis=1)]
    assert np.mean(nearest == who) >= 0.8  # 0.95 when written


def test_female_and_male_voices_separate(encoder, data_dir):
    """Nearest-centroid by gender, leave one speaker out, on emodb (German: a language the encoder's
    English training data lacks): every held-out speaker lands on its own gender's side."""
    emb, gender, speaker = [], [], []
    for g in ("female", "male"):
        for r in dev_rows(data_dir, "emodb", gender=g)[::12][:10]:
            y = _first_seconds(data_dir, r)
            emb.append(encoder.embed_windows(y, [(0, len(y))])[0])
            gender.append(g)
            speaker.append(r["speaker"])
    emb, gender, speaker = np.array(emb), np.array(gender), np.array(speaker)
    assert len(set(speaker[gender == "female"])) >= 3 and len(set(speaker[gender == "male"])) >= 3
    right = 0
    for i in range(len(emb)):
        train = speaker != speaker[i]
        cf = emb[train & (gender == "female")].mean(axis=0)
        cm = emb[train & (gender == "male")].mean(axis=0)
        guess = "female" if emb[i] @ cf / np.linalg.norm(cf) > emb[i] @ cm / np.linalg.norm(cm) else "male"
        right += guess == gender[i]
    assert right / len(emb) >= 0.85


def test_volume_is_raised_not_lowered():
    rng = np.random.default_rng(0)
    quiet = (0.001 * rng.standard_normal(SR)).astype(np.float32)
    loud = (0.3 * rng.standard_normal(SR)).astype(np.float32)
    dbfs = lambda y: 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)))  # noqa: E731
    assert dbfs(normalize_volume(quiet)) == pytest.approx(-30.0, abs=0.01)
    np.testing.assert_array_equal(normalize_volume(loud), loud)
    np.testing.assert_array_equal(normalize_volume(np.zeros(10, np.float32)), np.zeros(10, np.float32))


def test_short_spans_are_padded_and_bad_spans_refused(encoder):
    y = (0.1 * np.random.default_rng(1).standard_normal(SR)).astype(np.float32)
    assert encoder.embed_windows(y, [(0, 4000)]).shape == (1, EMBED_DIM)  # 0.25 s: zero-padded to 1.6 s
    assert encoder.embed_windows(y, np.zeros((0, 2), int)).shape == (0, EMBED_DIM)
    three = encoder.embed_windows(y, [(0, SR)], partials=3)
    np.testing.assert_allclose(np.linalg.norm(three, axis=1), 1.0, atol=1e-5)
    for bad in ([(0, SR + 1)], [(-1, 10)], [(5, 5)]):
        with pytest.raises(ParameterError):
            encoder.embed_windows(y, bad)
    with pytest.raises(ParameterError):
        encoder.embed_windows(y, [(0, SR)], partials=0)
    assert pool_partials(np.ones((4, EMBED_DIM), np.float32), partials=2).shape == (2, EMBED_DIM)
    assert cosine_distance(three, three)[0] == pytest.approx(0.0, abs=1e-6)


def test_altered_or_missing_weights_are_refused(tmp_path):
    src = default_models_dir()
    for name in ("speaker_encoder.npz", "speaker_encoder.json"):
        shutil.copy(src / name, tmp_path / name)
    load_encoder(tmp_path / "speaker_encoder.npz")  # an intact copy loads
    card = json.loads((tmp_path / "speaker_encoder.json").read_text())
    assert card["license"].startswith("Apache-2.0") and (src / "speaker_encoder.LICENSE.txt").is_file()
    with open(tmp_path / "speaker_encoder.npz", "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    with pytest.raises(ModelError, match="sha256"):
        load_encoder(tmp_path / "speaker_encoder.npz")
    with pytest.raises(ModelError, match="not found"):
        load_encoder(tmp_path / "nothing.npz")


def test_experiment_helpers_weigh_cells_and_pick_a_threshold_on_their_own_data():
    from dramapic_subs.train import embedding_experiment as ex

    source = np.array(["a"] * 6 + ["b"] * 2 + ["c"] * 4)
    gender = np.array(["female"] * 4 + ["male"] * 2 + ["female"] * 2 + ["male"] * 4)
    w = ex.cell_weights(source, gender)
    totals = {(s, g): w[(source == s) & (gender == g)].sum() for s, g in set(zip(source, gender))}
    # both genders weigh the same in total, and within a gender every source the same
    assert sum(v for (s, g), v in totals.items() if g == "female") == pytest.approx(len(w) / 2)
    assert totals[("a", "female")] == pytest.approx(totals[("b", "female")])
    assert totals[("a", "male")] == pytest.approx(totals[("c", "male")])
    scores = ex.gender_scores(np.array([True, True, False, False]), np.array([1.0, -1.0, -2.0, -0.5]))
    assert (scores["male"], scores["female"], scores["balanced"]) == (0.5, 1.0, 0.75)
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.5, 0.05, 200), rng.normal(0.2, 0.05, 200)
    assert 0.3 < ex.best_threshold(pos, neg) < 0.4
    assert ex.roc_auc(pos, neg) > 0.99
