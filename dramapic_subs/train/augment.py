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
        return _fields_key(self)


def _fields_key(spec) -> str:
    """A spec's fields as ``name=value|...``: part of the feature cache's keys, so it must not change."""
    return "|".join(f"{k}={v}" for k, v in asdict(spec).items())


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
        return "rhythm|" + _fields_key(self)


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


# Drawn uniformly, so laughs are 3 in 9. Cries and sighs are few: the sound model already calls nearly
# none of them speech (0% and 3% of 126 and 60 windows); laughs (95%), grunts (16%) and clicks it does.
VOCAL_KINDS = ("laugh", "laugh", "laugh", "grunt", "grunt", "click", "click", "cry", "sigh")


@dataclass(frozen=True)
class VocalSpec:
    """Non-verbal vocal sounds made from a speech clip's own vowels (``clip``: its row; labelled noise).

    Hard negatives for the speech decision, for what the pool lacks: laughter
    (one short vowel repeated at 4-6 per second, pitch falling, breath between),
    cries and moans (one pitch period held for half a second or more under a
    pitch glide), grunts (a short held vowel alone), sighs (breath shaped by a
    vowel's spectrum) and tongue clicks and lip smacks (a few millisecond
    bursts through the vowel's resonances). The voice is a real talker's, so
    only what is said, not who says it, tells them from speech.
    """

    clip: str
    kind: str            # one of VOCAL_KINDS
    gain_db: float
    band: str
    codec: str
    seed: int

    @property
    def bed(self) -> str:
        """The job's other file, as a mix's bed: its own clip, so a held-out speech corpus lends none."""
        return self.clip

    def key(self) -> str:
        return "vocal|" + _fields_key(self)


def plan_vocals(talkers: list[str], *, n: int, seed: int) -> list[VocalSpec]:
    """Draw ``n`` non-verbal vocal sounds, each from a random speech clip (see :class:`VocalSpec`)."""
    rng = np.random.default_rng(seed)
    plans = []
    for i in range(n):
        band, codec = _draw_chain(rng)
        plans.append(VocalSpec(clip=talkers[rng.integers(len(talkers))],
                               kind=str(VOCAL_KINDS[rng.integers(len(VOCAL_KINDS))]),
                               gain_db=float(rng.uniform(*GAIN_DB)), band=band, codec=codec,
                               seed=int(seed * 100_003 + i)))
    return plans


def vocalise(y: np.ndarray, *, sr: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A non-verbal vocal sound of ``kind`` (see :class:`VocalSpec`) from the vowels of speech ``y``,
    2-4 s long, at ``y``'s active power."""
    cycle = _vowel_cycle(y, sr=sr, rng=rng)
    if cycle is None:
        return np.zeros(2 * sr, np.float32)
    events = {"laugh": _laugh, "cry": _cry, "grunt": _grunt, "sigh": _sigh, "click": _clicks}[kind](cycle, sr=sr, rng=rng)
    out = np.zeros(int(rng.uniform(2.0, 4.0) * sr), np.float32)
    t = int(rng.uniform(0.0, 0.4) * sr)
    for ev in events:
        if t + len(ev) > len(out):
            break
        out[t:t + len(ev)] += ev
        t += len(ev) + int(rng.uniform(0.2, 0.9) * sr)
    return (out * np.sqrt(_active_power(y) / _active_power(out))).astype(np.float32)


def _vowel_cycle(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray | None:
    """One pitch period from the middle of a loud voiced stretch of ``y`` (a vowel), or None if none is found.

    Loud 40 ms frames whose autocorrelation peaks at a lag of 2.5-14 ms (70-400 Hz) count as voiced.
    """
    frame = int(0.04 * sr)
    n = len(y) // frame
    if n < 3:
        return None
    frames = y[:n * frame].reshape(n, frame).astype(np.float64)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    lo, hi = int(sr / 400), int(sr / 70)
    best = []
    for i in np.flatnonzero(rms >= 0.5 * np.percentile(rms, 95)):
        f = frames[i] - frames[i].mean()
        ac = np.correlate(f, f, mode="full")[frame - 1:]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.6:
            best.append((i, lag))
    if not best:
        return None
    i, lag = best[rng.integers(len(best))]
    start = i * frame + (frame - lag) // 2
    return y[start:start + lag].astype(np.float64)


def _held(cycle: np.ndarray, *, sr: int, seconds: float, pitch: np.ndarray, jitter: float,
          rng: np.random.Generator) -> np.ndarray:
    """``cycle`` repeated for ``seconds``, read at a speed that follows ``pitch`` (factors over time,
    interpolated) with a little random ``jitter``: a held vowel whose pitch moves."""
    n = int(seconds * sr)
    speed = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(pitch)), pitch)
    speed *= 1 + jitter * np.convolve(rng.standard_normal(n), np.ones(400) / 20, mode="same")
    pos = np.cumsum(speed) % len(cycle)
    return np.interp(pos, np.arange(len(cycle) + 1), np.r_[cycle, cycle[:1]])


def _envelope(n: int, *, sr: int, attack_s: float, release_s: float) -> np.ndarray:
    a, r = max(1, min(n // 2, int(attack_s * sr))), max(1, min(n // 2, int(release_s * sr)))
    env = np.ones(n)
    env[:a] = np.linspace(0, 1, a)
    env[n - r:] = np.linspace(1, 0, r)
    return env


def _breath(n: int, *, sr: int, rng: np.random.Generator, level: float) -> np.ndarray:
    """Aspiration: high-passed noise (an "h"), rising and falling."""
    sos = scipy.signal.butter(2, [800, min(6000, sr / 2 - 100)], btype="bandpass", fs=sr, output="sos")
    noise = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    return level * noise / (np.std(noise) + 1e-12) * np.hanning(n)


def _voiced(cycle: np.ndarray, *, sr: int, seconds: float, pitch: np.ndarray, rng: np.random.Generator,
            attack_s: float, release_s: float, breath: float) -> np.ndarray:
    v = _held(cycle, sr=sr, seconds=seconds, pitch=pitch, jitter=float(rng.uniform(0.0, 0.02)), rng=rng)
    v = v / (np.std(v) + 1e-12) * _envelope(len(v), sr=sr, attack_s=attack_s, release_s=release_s)
    return v + _breath(len(v), sr=sr, rng=rng, level=breath)


def _laugh(cycle: np.ndarray, *, sr: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One or two bouts of 3-8 "ha"s, 4-6 per second, each lower and softer than the last."""
    bouts = []
    for _ in range(int(rng.integers(1, 3))):
        rate, n_ha = rng.uniform(4.0, 6.0), int(rng.integers(3, 9))
        p0, fall, decay = rng.uniform(0.9, 1.5), rng.uniform(0.0, 0.05), rng.uniform(0.75, 1.0)
        period = int(sr / rate)
        bout = np.zeros(period * n_ha)
        for k in range(n_ha):
            ha = _voiced(cycle, sr=sr, seconds=rng.uniform(0.45, 0.7) / rate, pitch=np.array([p0 * (1 - fall * k)] * 2),
                         rng=rng, attack_s=0.01, release_s=0.04, breath=rng.uniform(0.1, 0.5))
            h = _breath(int(0.04 * sr), sr=sr, rng=rng, level=rng.uniform(0.2, 0.6))
            ha = np.r_[h, ha][:period]
            bout[k * period:k * period + len(ha)] += decay ** k * ha
        bouts.append(bout)
    return bouts


def _cry(cycle: np.ndarray, *, sr: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One to three cries or moans of 0.4-1.5 s, each under a pitch glide (rising, falling or both)."""
    cries = []
    for _ in range(int(rng.integers(1, 4))):
        p = rng.uniform(0.7, 1.6)
        pitch = p * np.array([1.0, rng.uniform(0.85, 1.3), rng.uniform(0.6, 1.1)])
        cries.append(_voiced(cycle, sr=sr, seconds=rng.uniform(0.4, 1.5), pitch=pitch, rng=rng,
                             attack_s=rng.uniform(0.02, 0.15), release_s=rng.uniform(0.1, 0.4),
                             breath=rng.uniform(0.05, 0.4)))
    return cries


def _grunt(cycle: np.ndarray, *, sr: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One to three short low "uh"s of 0.1-0.3 s, far apart."""
    return [_voiced(cycle, sr=sr, seconds=rng.uniform(0.1, 0.3), pitch=np.array([rng.uniform(0.6, 1.0)] * 2),
                    rng=rng, attack_s=0.01, release_s=0.08, breath=rng.uniform(0.1, 0.6))
            for _ in range(int(rng.integers(1, 4)))]


def _mouth_shape(cycle: np.ndarray, n: int) -> np.ndarray:
    """The vowel's magnitude spectrum (its resonances) on an ``n``-point FFT's bins."""
    return np.abs(np.fft.rfft(cycle * np.hanning(len(cycle)), n=n))


def _sigh(cycle: np.ndarray, *, sr: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One or two breaths of 0.5-1.5 s through the vowel's mouth shape (noise under its spectrum), voice
    fading in at the start of some."""
    out = []
    for _ in range(int(rng.integers(1, 3))):
        n = int(rng.uniform(0.5, 1.5) * sr)
        noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * _mouth_shape(cycle, n), n=n)
        noise = noise / (np.std(noise) + 1e-12) * np.hanning(n)
        if rng.random() < 0.5:
            voice = _voiced(cycle, sr=sr, seconds=n / sr, pitch=np.array([0.9, 0.7]), rng=rng, attack_s=0.05,
                            release_s=n / sr / 2, breath=0.0)
            noise[:len(voice)] += rng.uniform(0.2, 0.8) * voice[:n]
        out.append(noise)
    return out


def _clicks(cycle: np.ndarray, *, sr: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Two to five "tsk"s or lip smacks: groups of 1-4 bursts of 1-5 ms decay, 40-200 ms apart, through
    the vowel's mouth shape."""
    shape = _mouth_shape(cycle, 512)
    out = []
    for _ in range(int(rng.integers(2, 6))):
        n_clicks, gap = int(rng.integers(1, 5)), rng.uniform(0.04, 0.2)
        group = np.zeros(int((n_clicks * gap + 0.05) * sr))
        for k in range(n_clicks):
            burst = rng.standard_normal(512) * np.exp(-np.arange(512) / (rng.uniform(0.001, 0.005) * sr))
            burst = np.fft.irfft(np.fft.rfft(burst) * (shape if rng.random() < 0.7 else 1.0), n=512)
            at = int(k * gap * sr)
            group[at:at + 512] += rng.uniform(0.4, 1.0) * burst / (np.abs(burst).max() + 1e-12)
        out.append(group)
    return out
