"""Training-only augmentation: what a drama soundtrack does to clean recordings.

Speech laid over music, noise and nature beds at random SNRs, singing laid
over instrumental music (labelled song), non-speech chopped to speech's
syllable rhythm (labelled as the sound it is), gain changes,
band-limiting (telephone, dull TV speakers) and a lossy codec round trip.
Every mix is described by a :class:`MixSpec` drawn from a seeded generator,
so the same command always builds the same training set.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.signal

SNR_DB = (0.0, 20.0)
# Voice over accompaniment: a sung line sits a few dB above its band (MIR-1K's own mix is ~0 dB), so
# these mixes go lower than speech-over-bed ones, where dialogue is mixed to be understood.
SONG_SNR_DB = (-3.0, 12.0)
GAIN_DB = (-12.0, 6.0)
CODECS = (("mp3", "32k"), ("aac", "48k"), ("opus", "24k"))


@dataclass(frozen=True)
class MixSpec:
    """One augmented training clip: ``speech`` over ``bed`` (paths in the manifest).

    ``speech`` is the foreground clip, whose row (and label) the mix takes: speech, or singing for
    the song mixes. The field keeps its name because :meth:`key` is part of the feature cache's keys.
    """

    speech: str
    bed: str
    bed_offset_s: float
    snr_db: float
    gain_db: float
    band: str            # "", "telephone" or "lowpass"
    codec: str           # "" or "mp3:32k", ...
    seed: int

    def key(self) -> str:
        return "|".join(f"{k}={v}" for k, v in asdict(self).items())


def plan_mixes(speech: list[str], beds: list[str], *, n: int, seed: int,
               snr_db: tuple[float, float] = SNR_DB) -> list[MixSpec]:
    """Draw ``n`` mixes of random foreground clips over random beds.

    Parameters
    ----------
    speech : list of str
        Foreground clips (manifest paths): speech, or singing for song mixes.
    beds : list of str
        Background clips (manifest paths), looped to the foreground's length.
    n : int
        Number of mixes.
    seed : int
        Seed of the generator; the same arguments always give the same mixes.
    snr_db : (float, float)
        Range of the foreground-to-bed ratio, dB (foreground power over its louder half).
    """
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(n):
        band, codec = _draw_chain(rng)
        plans.append(MixSpec(
            speech=speech[rng.integers(len(speech))],
            bed=beds[rng.integers(len(beds))],
            bed_offset_s=float(rng.uniform(0, 30)),
            snr_db=float(rng.uniform(*snr_db)),
            gain_db=float(rng.uniform(*GAIN_DB)),
            band=band,
            codec=codec,
            seed=int(seed * 100_003 + i),
        ))
    return plans


@dataclass(frozen=True)
class RhythmSpec:
    """A non-speech clip (``clip``: its row and label) chopped by a speech clip's loudness contour.

    Hard negatives for the speech decision: syllable-rate bursts and pauses
    with no voice in them (knocks, rustles, music and water cut to a talker's
    rhythm), so that rhythm alone does not read as speech.
    """

    clip: str
    donor: str           # the speech clip lending its contour
    donor_offset_s: float
    floor: float         # level between syllables, as a share of the clip's own (0-1)
    gain_db: float
    band: str
    codec: str
    seed: int

    @property
    def bed(self) -> str:
        """The job's other file, as a mix's bed: the feature cache and leave-one-corpus-out key on it."""
        return self.donor

    def key(self) -> str:
        return "rhythm|" + "|".join(f"{k}={v}" for k, v in asdict(self).items())


def plan_rhythms(clips: list[str], donors: list[str], *, n: int, seed: int) -> list[RhythmSpec]:
    """Draw ``n`` non-speech clips, each to be chopped by a random speech clip's contour (see :class:`RhythmSpec`)."""
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(n):
        band, codec = _draw_chain(rng)
        plans.append(RhythmSpec(
            clip=clips[rng.integers(len(clips))],
            donor=donors[rng.integers(len(donors))],
            donor_offset_s=float(rng.uniform(0, 5)),
            floor=float(rng.uniform(0.0, 0.2)),
            gain_db=float(rng.uniform(*GAIN_DB)),
            band=band,
            codec=codec,
            seed=int(seed * 100_003 + i),
        ))
    return plans


def loudness_contour(y: np.ndarray, *, sr: int, hop_s: float = 0.01, smooth_s: float = 0.03) -> np.ndarray:
    """Per-sample level of ``y`` from 0 to 1: frame RMS (``hop_s`` seconds) smoothed over ``smooth_s``,
    scaled by its 95th percentile, so syllables reach ~1 and pauses ~0."""
    hop = max(1, int(hop_s * sr))
    n = len(y) // hop
    if n < 2:
        return np.ones(len(y), np.float32)
    rms = np.sqrt((y[:n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1))
    k = max(1, int(round(smooth_s / hop_s)))
    rms = np.convolve(rms, np.ones(k) / k, mode="same")
    rms = np.clip(rms / (np.percentile(rms, 95) + 1e-9), 0.0, 1.0)
    return np.interp(np.arange(len(y)), (np.arange(n) + 0.5) * hop, rms).astype(np.float32)


def impose_rhythm(clip: np.ndarray, donor: np.ndarray, *, sr: int, floor: float, offset: int = 0) -> np.ndarray:
    """``clip`` shaped by ``donor``'s loudness contour (looped to length), down to ``floor`` between
    syllables, at the clip's own active power."""
    if len(clip) == 0 or len(donor) == 0:
        return clip.copy()
    env = loudness_contour(donor, sr=sr)
    start = offset % len(env)
    env = np.tile(env, int(np.ceil((start + len(clip)) / len(env))))[start:start + len(clip)]
    out = clip * (floor + (1.0 - floor) * env)
    return (out * np.sqrt(_active_power(clip) / _active_power(out))).astype(np.float32)


def _draw_chain(rng: np.random.Generator) -> tuple[str, str]:
    """A mix's playback chain: band limit (none half the time) and lossy codec (none 60% of the time)."""
    band = str(rng.choice(["", "", "telephone", "lowpass"]))
    codec = "" if rng.random() < 0.6 else ":".join(CODECS[rng.integers(len(CODECS))])
    return band, codec


def mix_at_snr(speech: np.ndarray, bed: np.ndarray, *, snr_db: float, offset: int = 0) -> np.ndarray:
    """Lay ``speech`` over ``bed`` (looped to length) at ``snr_db`` dB."""
    if len(bed) == 0:
        return speech.copy()
    start = offset % len(bed)
    reps = int(np.ceil((start + len(speech)) / len(bed)))
    bed = np.tile(bed, reps)[start:start + len(speech)]
    p_speech = _active_power(speech)
    p_bed = float(np.mean(bed ** 2)) + 1e-12
    scale = np.sqrt(p_speech / (p_bed * 10 ** (snr_db / 10)))
    return (speech + scale * bed).astype(np.float32)


def _active_power(y: np.ndarray, frame: int = 400) -> float:
    """Power over the louder half of 25 ms frames: pauses do not dilute it."""
    n = len(y) // frame
    if n < 2:
        return float(np.mean(y ** 2)) + 1e-12
    frames = (y[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    return float(np.mean(np.sort(frames)[n // 2:])) + 1e-12


def band_limit(y: np.ndarray, *, sr: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Telephone band (300-3400 Hz) or a random low-pass between 3 and 6 kHz."""
    if kind == "telephone":
        sos = scipy.signal.butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos")
    elif kind == "lowpass":
        sos = scipy.signal.butter(6, float(rng.uniform(3000, 6000)), btype="lowpass", fs=sr, output="sos")
    else:
        return y
    return scipy.signal.sosfilt(sos, y).astype(np.float32)


def gain(y: np.ndarray, db: float) -> np.ndarray:
    """Scale by ``db`` decibels, clipping to full scale as a real chain would."""
    return np.clip(y * 10 ** (db / 20), -1.0, 1.0).astype(np.float32)
