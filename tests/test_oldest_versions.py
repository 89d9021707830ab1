"""The oldest numpy, scipy and scikit-learn that pyproject.toml allows really work.

A fresh venv gets the project with exactly those lower bounds; the CLI then
captions the example (no warning, right labels) and the npz parity tests run
there, exporting with that old scikit-learn. The newest versions are what the
main test run installs. Installing takes minutes (about 1 with pip's cache),
so it runs only with ``DRAMAPIC_TEST_OLDEST=1``, which ``.ci/run`` sets.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, assert_example_labels

PINNED = ("numpy", "scipy", "scikit-learn")

pytestmark = [pytest.mark.oldest, pytest.mark.skipif(
    os.environ.get("DRAMAPIC_TEST_OLDEST") != "1",
    reason="installs the oldest allowed numpy/scipy/scikit-learn (minutes); set DRAMAPIC_TEST_OLDEST=1")]


def lower_bounds() -> dict[str, str]:
    """``{"numpy": "1.25", ...}``: the ``>=`` bounds pyproject.toml declares (run-time or train extra)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return {name: re.search(rf'"{name}>=([0-9.]+)"', text).group(1) for name in PINNED}


@pytest.fixture(scope="module")
def old_python(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("oldest") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pins = [f"{name}=={version}" for name, version in lower_bounds().items()]
    subprocess.run([python, "-m", "pip", "install", "--quiet", str(ROOT), "pytest", *pins], check=True)
    return python


def _release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.match(r"[0-9.]+", version).group(0).strip(".").split(".")]
    while parts and parts[-1] == 0:  # 1.25.0 == 1.25
        parts.pop()
    return tuple(parts)


def test_the_venv_holds_exactly_the_lower_bounds(old_python):
    code = "import json, numpy, scipy, sklearn; print(json.dumps([numpy.__version__, scipy.__version__, sklearn.__version__]))"
    got = json.loads(subprocess.run([old_python, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert [_release(v) for v in got] == [_release(v) for v in lower_bounds().values()], got


def test_cli_captions_the_example_without_a_warning(old_python, tmp_path):
    proc = subprocess.run([old_python, "-m", "dramapic_subs", ROOT / "examples" / "example.mp4", "--format", "json",
                           "-o", tmp_path, "--quiet"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "Warning" not in proc.stdout, proc.stderr
    assert_example_labels(tmp_path / "example.json")


def test_parity_and_bad_bundle_tests_pass_on_the_oldest_versions(old_python):
    # From the checkout (cwd first on sys.path): the code under test, with the old libraries.
    proc = subprocess.run([old_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_estimators.py"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
