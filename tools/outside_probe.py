"""Sounds from outside the data pool: two games' voice and effect libraries.

The pool (``../shared/data``) holds coughs and throat clearing but no laughter,
grunts or cries, so nothing in ``reports/accuracy.md`` says how often those are
called speech. This script measures it on recordings no model here was ever
fitted or chosen on, taken from Debian's packages of two games (GPL-2 and
other free licences; fetched at run time with ``apt-get download`` into a
scratch folder, never into the project). Identical files are counted once.

- ``hedgewars-data``, the voice packs (British, Pirate, Robot, Russian,
  Polish, Spanish...; each says the same ~40 lines):
  - non-verbal: ``Laugh``, ``Hmm``, ``Jump1-3`` (effort grunts), ``Ooff1-3``
    and ``Ow1-4`` (pain), ``PoisonCough``, ``PoisonMoan``; a cue that says
    "speech" over them is wrong;
  - spoken: every other line ("Hello", "Incoming", "Missed"...), mostly under
    two seconds, many shouted or heavily processed (robot, megaphone).
- ``wesnoth-1.16-data``, the sound effects:
  - non-verbal: actors' cries when humans, elves, dwarves, orcs, trolls...
    are hit or die, laughs, groans, wails;
  - creature calls: wolves, horses, drakes, gryphons, bats, hisses...;
  - effects: weapons, magic, fire, water, interface sounds, ambiences.

For each group the share of audible windows whose top label is speech, and
the share where Silero VAD's peak chunk probability in the window (the JSON's
``speech_activity``) passes 0.5: a looser call than Silero's own mean >= 0.5
that ``reports/accuracy.md`` scores.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

HEDGEWARS_NONVERBAL = re.compile(r"^(Laugh|Hmm|Jump\d|Ooff\d|Ow\d|PoisonCough|PoisonMoan)$")
WESNOTH_CRIES = re.compile(r"^(human|elf|dwarf|orc|goblin|troll|ogre|mermaid|mermen|lich|zombie)(-[a-z]+)*-(hit|die)(-\d)?$"
                           r"|laugh|groan|^ugg$|^wail")
WESNOTH_CREATURES = re.compile(r"^(ghoul|wolf|horse|drake|gryphon|bat|tusker|yeti|naga|hiss|wose|skeleton)")


def hedgewars_group(stem: str) -> list[str]:
    """``<pack>__<line>``: the groups its windows count in."""
    line = stem.split("__", 1)[1]
    if HEDGEWARS_NONVERBAL.match(line):
        return ["non-verbal", "non-verbal: " + re.sub(r"\d", "", line)]
    return ["spoken lines"]


def wesnoth_group(stem: str) -> list[str]:
    name = stem.split("__", 1)[1]
    if WESNOTH_CRIES.search(name):
        return ["non-verbal", "non-verbal: cries of pain and death" if re.search(r"-(hit|die)", name)
                else "non-verbal: laughs, groans, wails"]
    return ["creature calls" if WESNOTH_CREATURES.match(name) else "effects"]


@dataclass(frozen=True)
class Probe:
    package: str
    folder: str         # inside the package
    pattern: str        # glob under it
    group: Callable[[str], list[str]]


PROBES = {
    "hedgewars": Probe("hedgewars-data", "usr/share/games/hedgewars/Data/Sounds/voices", "*/*.ogg",
                       hedgewars_group),
    "wesnoth": Probe("wesnoth-1.16-data", "usr/share/games/wesnoth/1.16/data/core/sounds", "**/*.[ow][ga][gv]",
                     wesnoth_group),
}


def fetch(probe: Probe, scratch: Path) -> Path:
    """The package's sound folder under ``scratch`` (downloaded and unpacked once)."""
    root = scratch / probe.package
    folder = root / probe.folder
    if folder.is_dir():
        return folder
    scratch.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", probe.package], cwd=scratch, check=True, capture_output=True)
    deb = next(scratch.glob(f"{probe.package}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return folder


def unique_clips(folder: Path, pattern: str, into: Path) -> list[Path]:
    """Each distinct file once, as ``<parent>__<name>`` (some voice packs share files byte for byte);
    a second file of the same stem (``staff.ogg``, ``staff.wav``) becomes ``<parent>__<stem>~<ext>``, as
    the CLI names outputs by stem and skips an input whose outputs another one already writes."""
    into.mkdir(parents=True, exist_ok=True)
    seen, stems, out = set(), set(), []
    for f in sorted(folder.glob(pattern)):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        stem = f"{f.parent.name}__{f.stem}"
        if stem in stems:
            stem += "~" + f.suffix[1:]
        stems.add(stem)
        dst = into / f"{stem}{f.suffix}"
        shutil.copyfile(f, dst)
        out.append(dst)
    return out


def tally(outputs: Path, group: Callable[[str], list[str]]) -> dict:
    """Windows, called speech and Silero's vote per group."""
    counts = collections.defaultdict(collections.Counter)
    for f in sorted(outputs.glob("*.json")):
        doc = json.loads(f.read_text())
        keys = group(Path(doc["source"]).stem)
        for w in doc["windows"]:
            if w["silence"]:
                continue
            top = max(w["sound_type"], key=w["sound_type"].get)
            for k in keys:
                counts[k].update(windows=1, speech=top == "speech", silero=(w.get("speech_activity") or 0) > 0.5)
    return counts


def run(probe: Probe, *, scratch: Path, models: Path | None) -> tuple[int, dict]:
    """Distinct clips and their counts per group, captioned by the CLI as a user would."""
    clips = unique_clips(fetch(probe, scratch), probe.pattern, scratch / probe.package / "clips")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dramapic_subs", *map(str, clips), "-f", "json", "-o", tmp, "-j", "2", "-q"]
        if models:
            cmd += ["--models", str(models)]
        subprocess.run(cmd, check=True)
        return len(clips), tally(Path(tmp), probe.group)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "dramapic-probe")
    ap.add_argument("--models", type=Path, default=None, help="model folder (default: the shipped ones)")
    ap.add_argument("--only", choices=sorted(PROBES), default=None)
    args = ap.parse_args()
    print(f"{'group':58s} {'windows':>8s} {'called speech':>14s} {'Silero peak > 0.5':>18s}")
    for name, probe in PROBES.items():
        if args.only and name != args.only:
            continue
        n, counts = run(probe, scratch=args.scratch, models=args.models)
        for k in sorted(counts, key=lambda k: (":" in k, k)):
            c = counts[k]
            label = f"{name} ({n} clips): {k}"
            print(f"{label:58s} {c['windows']:8d} {c['speech'] / c['windows']:14.1%} {c['silero'] / c['windows']:18.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
