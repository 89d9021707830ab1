"""What a whole clip holds: shares of time, voices, longest stretches, a video-type hint.

Each cue counts for its own length under its likeliest sound type (or as
silence). The video-type hint applies these rules in order; the first that
matches wins and its reason is reported:

1. **music show**: music and song fill at least 45% of the time.
2. **ambient/nature**: noise and nature fill at least 50% of the time.
3. If speech fills at least 35% of the time:

   a. **documentary/narration**: one voice (female or male) holds at least
      75% of the speech time (the gender model is right on ~9 in 10 windows,
      so a single narrator rarely scores 100%), and music plays under the
      speech (music and song probability averages at least 12% on speech
      cues) or fills at least 10% of the time on its own;
   b. **interview/talk**: music fills under 10% and ambience under 20% of
      the time: people talking, little else;
   c. **drama**: speech shares the clip with music or ambience.

4. **drama**: speech fills at least 15% and music or ambience at least 30%.
5. Otherwise the type of the largest share (speech: interview/talk,
   music or song: music show, noise or nature: ambient/nature).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .result import Analysis
from .windows import runs

SOUND_TYPES = ("speech", "song", "music", "noise", "nature")
MUSICAL = ("music", "song")
AMBIENT = ("noise", "nature")
ONE_VOICE = 0.75  # share of speech time held by one gender for "one narrator"
MUSIC_BED = 0.12  # mean music+song probability on speech cues for "music under the speech"


@dataclass(frozen=True)
class Stretch:
    """A run of consecutive cues of one kind, in seconds."""

    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Summary:
    """One clip at a glance.

    Attributes
    ----------
    duration_s : float
    shares : dict
        Share of time (0-1) per sound type and ``silence``; sums to 1.
    voices : dict or None
        Share (0-1) of speech time whose likelier voice is female / male;
        None without speech.
    longest_speech, longest_music : Stretch or None
        Longest run of speech cues, and of music or song cues.
    video_type : str
        ``interview/talk``, ``drama``, ``documentary/narration``,
        ``music show`` or ``ambient/nature``.
    reason : str
        The rule that chose it, with the numbers.
    """

    duration_s: float
    shares: dict[str, float]
    voices: dict[str, float] | None
    longest_speech: Stretch | None
    longest_music: Stretch | None
    video_type: str
    reason: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shares"] = {k: round(v, 4) for k, v in self.shares.items()}
        if self.voices:
            d["voices"] = {k: round(v, 4) for k, v in self.voices.items()}
        for key in ("longest_speech", "longest_music"):
            s = getattr(self, key)
            d[key] = None if s is None else {"start": round(s.start, 3), "end": round(s.end, 3),
                                             "seconds": round(s.length, 3)}
        return d


def summarize(analysis: Analysis) -> Summary:
    """Summarize an analysis (see the module docstring for the video-type rules)."""
    sound = analysis.model("sound_type")
    dur = analysis.end_s - analysis.start_s
    total = float(dur.sum()) or 1.0
    top = np.array(["silence"] * len(analysis), dtype=object)
    valid = ~analysis.silent
    if valid.any():
        top[valid] = np.asarray(sound.labels, dtype=object)[np.argmax(sound.proba[valid], axis=1)]
    shares = {lab: float(dur[top == lab].sum() / total) for lab in (*SOUND_TYPES, "silence")}
    speech = top == "speech"
    voices = _voices(analysis, speech, dur)
    bed = _music_under_speech(sound.labels, sound.proba, speech)
    video_type, reason = _video_type(shares, voices, bed)
    return Summary(
        duration_s=float(analysis.duration_s), shares=shares, voices=voices,
        longest_speech=_longest(analysis, speech), longest_music=_longest(analysis, np.isin(top, MUSICAL)),
        video_type=video_type, reason=reason,
    )


def _voices(analysis: Analysis, speech: np.ndarray, dur: np.ndarray) -> dict[str, float] | None:
    """Share of speech time judged to be each voice (by the likelier label per cue)."""
    try:
        gender = analysis.model("gender")
    except KeyError:
        return None
    if not speech.any():
        return None
    w = dur[speech] / dur[speech].sum()
    winner = np.argmax(gender.proba[speech], axis=1)
    return {lab: float(w[winner == j].sum()) for j, lab in enumerate(gender.labels)}


def _music_under_speech(labels: list[str], proba: np.ndarray, speech: np.ndarray) -> float:
    if not speech.any():
        return 0.0
    cols = [labels.index(lab) for lab in MUSICAL if lab in labels]
    return float(proba[speech][:, cols].sum(axis=1).mean())


def _longest(analysis: Analysis, mask: np.ndarray) -> Stretch | None:
    stretches = [Stretch(float(analysis.start_s[a]), float(analysis.end_s[b])) for a, b in runs(mask)]
    return max(stretches, key=lambda s: s.length, default=None)


def _video_type(shares: dict[str, float], voices: dict[str, float] | None, bed: float) -> tuple[str, str]:
    speech = shares["speech"]
    musical = sum(shares[k] for k in MUSICAL)
    ambient = sum(shares[k] for k in AMBIENT)
    pct = lambda x: f"{100 * x:.0f}%"  # noqa: E731
    if musical >= 0.45:
        return "music show", f"music and song fill {pct(musical)} of the time"
    if ambient >= 0.5:
        return "ambient/nature", f"noise and nature fill {pct(ambient)} of the time"
    if speech >= 0.35:
        one_voice = max(voices.values()) if voices else 0.0
        if one_voice >= ONE_VOICE and (bed >= MUSIC_BED or musical >= 0.1):
            who = max(voices, key=voices.get) if voices else "one"
            return ("documentary/narration",
                    f"one {who} voice holds {pct(one_voice)} of the speech ({pct(speech)} of the time) "
                    f"with music under or between it")
        if musical < 0.1 and ambient < 0.2:
            return "interview/talk", f"speech fills {pct(speech)} of the time with little music or ambience"
        return "drama", (f"speech ({pct(speech)}) shares the clip with music ({pct(musical)}) "
                         f"and ambience ({pct(ambient)})")
    if speech >= 0.15 and musical + ambient >= 0.3:
        return "drama", f"speech ({pct(speech)}) between music ({pct(musical)}) and ambience ({pct(ambient)})"
    largest = max(("speech", speech), ("music", musical), ("ambient", ambient), key=lambda kv: kv[1])[0]
    kind = {"speech": "interview/talk", "music": "music show", "ambient": "ambient/nature"}[largest]
    return kind, f"no rule matched; {largest} is the largest share"
