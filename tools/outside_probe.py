"""Vocal sounds from outside the data pool: game voice packs, non-verbal and spoken.

The pool (``../shared/data``) holds coughs and throat clearing but no laughter,
grunts or cries, so nothing in ``reports/accuracy.md`` says how often those are
called speech. This script measures it on recordings no model here was ever
fitted or chosen on: the voice packs of the game Hedgewars, taken from
Debian's ``hedgewars-data`` package (GPL-2 and other free licences; fetched
at run time with ``apt-get download`` into a scratch folder, never into the
project). Fifteen packs (British, Pirate, Robot, Russian, Polish, Spanish...)
each say the same ~40 lines; identical files are counted once.

- non-verbal: ``Laugh``, ``Hmm``, ``Jump1-3`` (effort grunts), ``Ooff1-3``
  and ``Ow1-4`` (pain): a cue that says "speech" over them is wrong;
- spoken: every other line ("Hello", "Incoming", "Missed"...), mostly under
  two seconds and many heavily processed (robot, chipmunk, megaphone).

For each group the share of audible windows whose top label is speech, and
the share where Silero VAD's mean chunk probability passes 0.5.

    python tools/outside_probe.py [--scratch /tmp/dramapic-probe] [--models models]
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "hedgewars-data"
VOICES = "usr/share/games/hedgewars/Data/Sounds/voices"
NONVERBAL = re.compile(r"^(Laugh|Hmm|Jump\d|Ooff\d|Ow\d)$")


def fetch(scratch: Path) -> Path:
    """The package's voice folder under ``scratch`` (downloaded and unpacked once)."""
    root = scratch / "deb"
    voices = root / VOICES
    if voices.is_dir():
        return voices
    scratch.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", PACKAGE], cwd=scratch, check=True, capture_output=True)
    deb = next(scratch.glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return voices


def unique_clips(voices: Path, into: Path) -> list[Path]:
    """Each distinct file once, as ``<pack>__<line>.ogg`` (some packs share files byte for byte)."""
    into.mkdir(parents=True, exist_ok=True)
    seen, out = set(), []
    for f in sorted(voices.glob("*/*.ogg")):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        dst = into / f"{f.parent.name}__{f.name}"
        shutil.copyfile(f, dst)
        out.append(dst)
    return out


def tally(outputs: Path) -> dict:
    """Windows, called speech and Silero's vote per group and per non-verbal line."""
    counts = collections.defaultdict(lambda: collections.Counter())
    for f in sorted(outputs.glob("*.json")):
        doc = json.loads(f.read_text())
        line = Path(doc["source"]).stem.split("__", 1)[1]
        nonverbal = bool(NONVERBAL.match(line))
        keys = ["non-verbal", "non-verbal: " + re.sub(r"\d", "", line)] if nonverbal else ["spoken"]
        for w in doc["windows"]:
            if w["silence"]:
                continue
            top = max(w["sound_type"], key=w["sound_type"].get)
            for k in keys:
                counts[k].update(windows=1, speech=top == "speech", silero=(w.get("speech_activity") or 0) > 0.5)
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "dramapic-probe")
    ap.add_argument("--models", type=Path, default=None, help="model folder (default: the shipped ones)")
    args = ap.parse_args()
    clips = unique_clips(fetch(args.scratch), args.scratch / "clips")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dramapic_subs", *map(str, clips), "-f", "json", "-o", tmp, "-j", "2", "-q"]
        if args.models:
            cmd += ["--models", str(args.models)]
        subprocess.run(cmd, check=True)
        counts = tally(Path(tmp))
    print(f"{len(clips)} distinct clips")
    print(f"{'group':28s} {'windows':>8s} {'called speech':>14s} {'Silero > 0.5':>13s}")
    for k in sorted(counts, key=lambda k: (k != "spoken", k)):
        c = counts[k]
        print(f"{k:28s} {c['windows']:8d} {c['speech'] / c['windows']:14.1%} {c['silero'] / c['windows']:13.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
