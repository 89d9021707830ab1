"""Smoothing over time that stops where the sound changes (dramapic_subs.smoothing)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from .conftest import SR, dev_audio, mux
from dramapic_subs.errors import ModelError
from dramapic_subs.smoothing import ChangeRule, smooth_probabilities, stretches


def test_stretches_start_at_changes_pauses_and_around_a_straddling_window():
    rng = np.random.default_rng(0)
    a, b = np.zeros((5, 3)) + rng.normal(0, 0.05, (5, 3)), np.ones((5, 3)) + rng.normal(0, 0.05, (5, 3))
    valid = np.ones(10, bool)
    # A cut between windows 4 and 5: windows 4 and 5 stand alone (their neighbours across differ).
    assert stretches(np.vstack([a, b]), valid=valid, threshold=0.5).tolist() == [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]
    # A window half of each (it straddles the cut): close enough to both sides, averaged with neither.
    mixed = np.vstack([a[:4], [[0.5, 0.5, 0.5]], b[:4]])
    assert stretches(mixed, valid=valid[:9], threshold=0.6).tolist() == [0, 0, 0, 0, 1, 2, 2, 2, 2]
    # Small changes inside one sound start nothing; a silent window (its row is garbage) does.
    same = np.vstack([a, a])
    same[4] = 50.0
    quiet = valid.copy()
    quiet[4] = False
    assert stretches(same, valid=quiet, threshold=0.5).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert stretches(np.vstack([a, b]), valid=valid, threshold=5.0).tolist() == [0] * 10
    assert stretches(a[:1], valid=valid[:1], threshold=0.5).tolist() == [0]


def test_smoothing_averages_inside_a_stretch_and_never_across():
    n = 12
    proba = np.zeros((n, 2))
    proba[:6, 0] = 1.0
    proba[6:, 1] = 1.0
    proba[2] = [0.2, 0.8]  # one stray window inside the first sound
    valid = np.ones(n, bool)
    stretch = np.r_[np.zeros(6, int), np.ones(6, int)]
    out = smooth_probabilities(proba, width=5, valid=valid, stretch=stretch)
    assert (out.argmax(axis=1) == np.r_[np.zeros(6), np.ones(6)]).all()  # the stray window is outvoted
    np.testing.assert_allclose(out[6:], proba[6:])  # nothing of the first sound leaks into the second
    np.testing.assert_allclose(out[0], proba[:3].mean(axis=0))  # at the edge: the neighbours there are
    plain = smooth_probabilities(proba, width=5, valid=valid)
    assert plain[6, 0] > 0.3 and plain[5, 1] > 0.3  # a plain moving average blurs the cut


def test_change_rule_card_round_trip_and_refusals():
    rule = ChangeRule(("a_mean", "b_mean"), np.array([1.0, 2.0]), np.array([0.5, 4.0]), 0.7)
    back = ChangeRule.from_card(rule.card())
    assert back.columns == rule.columns and back.threshold == 0.7
    np.testing.assert_allclose(back.standardised(np.array([[2.0, 9.0, 6.0]]), ["a_mean", "x", "b_mean"]),
                               [[2.0, 1.0]])
    for bad in ({"columns": ["a"], "mean": [0.0, 1.0], "scale": [1.0, 1.0], "threshold": 1},
                {"columns": ["a"], "mean": [0.0], "scale": [0.0], "threshold": 1},
                {"columns": ["a"], "mean": [0.0]}):
        with pytest.raises(ModelError):
            ChangeRule.from_card(bad)
    with pytest.raises(ModelError):
        rule.standardised(np.zeros((1, 1)), ["other"])


def test_a_bundle_refuses_a_rule_on_columns_it_does_not_take():
    from dramapic_subs.pipeline import load_models

    sound, _ = load_models()
    rule = dataclasses.replace(sound.change, columns=("no_such_mean",) * len(sound.change.columns))
    with pytest.raises(ModelError, match="no_such_mean"):
        dataclasses.replace(sound, change=rule)


def test_shipped_smoothing_steadies_a_scene_without_blurring_the_cut(data_dir, ffmpeg, tmp_path):
    """Dev speech then dev music, a hard cut between: the shipped smoothing (9 windows, stopping where the
    sound changes) keeps each side's windows next to the cut their own; without the stop it blurs them."""
    from dramapic_subs.pipeline import analyze, load_models

    sound, gender = load_models()
    assert sound.smooth > 1 and sound.change is not None
    speech = dev_audio(data_dir, "librispeech_resemblyzer", 14.0)
    music = dev_audio(data_dir, "zento_rusted_music", 14.0, offset=30.0)
    path = mux(ffmpeg, np.concatenate([speech, music]), tmp_path / "cut.mp4", video=False)
    cut = len(speech) / SR

    def proba(bundle):
        out = analyze(path, models=[bundle, gender]).model("sound_type")
        return out.proba, list(out.labels)

    stops, labels = proba(sound)
    blurred, _ = proba(dataclasses.replace(sound, change=None))
    centre = np.arange(len(stops)) + 0.5  # window i spans i - 0.5 .. i + 1.5 s
    own = np.where(centre <= cut, labels.index("speech"), labels.index("music"))
    other = np.where(centre <= cut, labels.index("music"), labels.index("speech"))
    # The windows a 9-wide average reaches across the cut, but not the two that straddle it.
    near = (np.abs(centre - cut) <= 4.5) & (np.abs(centre - cut) >= 1)
    rows = np.flatnonzero(near)
    assert (stops[rows, own[rows]] > 0.5).all()  # each side's own sound
    leaked, blurred_in = stops[rows, other[rows]].mean(), blurred[rows, other[rows]].mean()
    assert blurred_in > 0.15 and leaked < blurred_in / 3  # the other side's sound stays out


def test_cli_smooth_sets_the_sound_models_width(drama, tmp_path):
    """--smooth 1 gives each window's own probabilities (what the model says of it alone); the default is
    the card's width, and the JSON says which was used."""
    import json

    from dramapic_subs.pipeline import analyze, load_models

    from .conftest import run_cli

    docs = {}
    for name, args in (("default", ()), ("raw", ("--smooth", "1"))):
        (tmp_path / name).mkdir()
        run_cli(drama.path, "--format", "json", "-o", tmp_path / name, "--quiet", *args, check=True)
        docs[name] = json.loads((tmp_path / name / "drama.json").read_text(encoding="utf-8"))
    sound, gender = load_models()
    assert docs["default"]["models"]["sound_type"]["smooth"] == sound.smooth > 1
    assert docs["raw"]["models"]["sound_type"]["smooth"] == 1
    raw = analyze(drama.path, models=[dataclasses.replace(sound, smooth=1), gender]).model("sound_type")
    got = np.array([[w["sound_type"][lab] for lab in raw.labels] for w in docs["raw"]["windows"] if not w["silence"]])
    np.testing.assert_allclose(got, raw.proba[~np.isnan(raw.proba[:, 0])], atol=1e-4)  # the JSON rounds to 4 places
    smoothed = np.array([[w["sound_type"][lab] for lab in raw.labels] for w in docs["default"]["windows"]
                         if not w["silence"]])
    assert np.abs(smoothed - got).max() > 0.05  # the default does smooth


class _ColumnEstimator:
    """A stand-in classifier: P(speech) is the input's first column."""

    classes_ = np.array(["music", "speech"])

    def predict_proba(self, X):
        return np.column_stack([1 - X[:, 0], X[:, 0]])


@pytest.mark.parametrize("seed", range(6))
def test_voice_gate_decides_what_the_finished_smoothing_finds_where_stretches_meet(seed):
    """Sounds changing every few windows, pauses, windows that straddle a change, rows arriving in blocks of
    any size: the gate's decision for each window must be the finished analysis's. The stops compare a
    window with its valid neighbours on both sides, so the gate must hold one valid window past the
    average's reach on each side."""
    from types import SimpleNamespace

    from dramapic_subs.features import FeatureSpec, feature_names
    from dramapic_subs.models import ModelBundle
    from dramapic_subs.representations import Spectral
    from dramapic_subs.voice import VoiceGate, _likely

    rng = np.random.default_rng(seed)
    rep = Spectral(FeatureSpec(1024, hop=512), ("centroid_mean", "rms_db_mean", "zcr_mean"))
    rule = ChangeRule(("rms_db_mean", "zcr_mean"), np.zeros(2), np.ones(2), threshold=1.0)
    sound = ModelBundle("sound_type", _ColumnEstimator(), ["speech", "music"], rep.spec, smooth=5, inputs=(rep,),
                        change=rule)
    n = 300
    level = np.where(rng.random(n) < 0.1, -90.0, -20.0)  # a pause now and then
    sounds = np.repeat(rng.normal(0, 2, (n, 2)), rng.integers(1, 6, n), axis=0)[:n]  # each held 1-5 windows
    sounds[rng.random(n) < 0.15] *= 0.5  # some straddle: half of the sound around them
    X = np.column_stack([rng.random(n), sounds])
    rows = np.zeros((n, len(feature_names())))  # what the spectral stream hands out: every column
    rows[:, [feature_names().index(c) for c in rep.columns]] = X
    gate = VoiceGate(sound, level_key=rep.key)
    got, i = [], 0
    while i < n:
        k = int(rng.integers(1, 9))
        got.append(gate.add({rep.key: SimpleNamespace(X=rows[i:i + k], level_db=level[i:i + k])}))
        i += k
    got.append(gate.add({}, final=True))
    silent = level < -50
    whole = sound.smooth_windows(sound.predict_windows(X, silent=silent), X, silent=silent)
    assert np.concatenate(got).tolist() == _likely(whole, sound.labels, silent, None).tolist()


def test_a_straddling_window_takes_the_answer_of_the_side_it_sounds_closer_to():
    from dramapic_subs.smoothing import settle_straddlers

    # Sound A (Z = 0) for windows 0-4, a cut inside window 5, sound B (Z = 1) from window 6 on.
    music, noise, speech = [0.0, 0.9, 0.1], [0.0, 0.1, 0.9], [0.8, 0.1, 0.1]
    smoothed = np.array([music] * 5 + [[0.1, 0.5, 0.4]] + [noise] * 5)
    valid = np.ones(11, bool)
    mostly_b = np.r_[np.zeros(5), 0.7, np.ones(5)][:, None]  # B fills more of window 5: its cue is B's
    out = settle_straddlers(smoothed, mostly_b, valid=valid, threshold=0.5)
    assert out[5].tolist() == noise and np.array_equal(np.delete(out, 5, 0), np.delete(smoothed, 5, 0))
    mostly_a = mostly_b.copy()
    mostly_a[5] = 0.3
    assert settle_straddlers(smoothed, mostly_a, valid=valid, threshold=0.5)[5].tolist() == music
    # Speech is kept where it is: neither moved off a straddler nor onto one.
    said = smoothed.copy()
    said[5] = speech
    assert settle_straddlers(said, mostly_b, valid=valid, threshold=0.5, keep=0)[5].tolist() == speech
    onto = smoothed.copy()
    onto[6:] = speech
    assert settle_straddlers(onto, mostly_b, valid=valid, threshold=0.5, keep=0)[5].tolist() == [0.1, 0.5, 0.4]
    # A silent window between neighbours is skipped over: the valid neighbours decide.
    gap = valid.copy()
    gap[6] = False
    assert settle_straddlers(smoothed, mostly_b, valid=gap, threshold=0.5)[5].tolist() == noise
    # No change in the sound: nothing moves.
    flat = np.zeros((11, 1))
    assert np.array_equal(settle_straddlers(smoothed, flat, valid=valid, threshold=0.5), smoothed)
