"""The tolerant output comparison (tests/nbval_tolerance.py): what it accepts, what it still catches."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nbval_tolerance import NUMBER, TolerantText, cell_tolerance, first_difference, numbers_match, texts_match


@pytest.mark.parametrize(("stored", "fresh"), [
    ("max|Δlogits| = 1.3e-06", "max|Δlogits| = 1.2e-06"),     # one unit of the last printed digit
    ("top-5: 0.08", "top-5: 0.09"),                              # a rounding boundary crossed
    ("loss 5.34781", "loss 5.34783"),                            # within rtol = 1e-4
    ("tensor([0.1250, 0.5000])", "tensor([0.1251, 0.4999])"),
    ("version 2.13.0", "version 2.13.0"),
    ("-0.0001", "0.0000"),
])
def test_accepts_rounding_differences(stored, fresh):
    assert texts_match(stored, fresh)
    assert TolerantText(stored) == fresh and not (TolerantText(stored) != fresh)


@pytest.mark.parametrize(("stored", "fresh"), [
    ("loss 5.3478", "loss 5.3511"),                  # 33 units, beyond rtol = 1e-4: a real change
    ("124,439,808 parameters", "124,439,809 parameters"),   # integers are exact
    ("shape (2, 3)", "shape (3, 2)"),
    ("perplexity 12.106", "perplexity 12.106 (val)"),       # text is exact
    ("version 2.13.0", "version 2.13.1"),                   # a version is text, not a float
    ("ch01", "ch02"),
    ("0.25", "nan"),
    ("1.5 2.5", "1.5"),                                      # a different count of numbers
    ("inf", "-inf"),
])
def test_catches_real_differences(stored, fresh):
    assert not texts_match(stored, fresh)
    assert first_difference(stored, fresh) != "no difference"


def test_number_tokens():
    text = "ch01 has 124,439,808 params, loss 2.206, err 1.2e-06, torch 2.13.0, -3 and x1."
    assert NUMBER.findall(text) == ["124", "439", "808", "2.206", "1.2e-06", "-3"]


def test_one_unit_is_measured_in_the_coarser_token():
    assert numbers_match("0.3", "0.35")        # 0.3 printed with one decimal: a unit is 0.1
    assert not numbers_match("0.30", "0.35")   # with two decimals a unit is 0.01


def test_cell_tolerance_from_metadata():
    assert cell_tolerance({}) == (1e-4, 0.0)
    assert cell_tolerance({"nbval": {"rtol": 0.05, "reason": "measured"}}) == (0.05, 0.0)
    assert texts_match("acc 0.3356", "acc 0.3311", *cell_tolerance({"nbval": {"rtol": 0.02, "reason": "m"}}))
    with pytest.raises(ValueError, match="reason"):
        cell_tolerance({"nbval": {"rtol": 0.05}})
    assert not texts_match("acc 0.3356", "acc 0.3311")
    with pytest.raises(ValueError, match="rtol"):
        cell_tolerance({"nbval": {"rtoll": 0.05}})
    with pytest.raises(ValueError, match="out of range"):
        cell_tolerance({"nbval": {"rtol": -1, "reason": "m"}})


def _notebook(path: Path, code: str, stored: str, metadata: dict | None = None) -> Path:
    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [{"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": metadata or {},
                   "source": code, "outputs": [{"output_type": "stream", "name": "stdout", "text": stored}]}],
    }
    path.write_text(json.dumps(nb))
    return path


def _nbval(path: Path) -> subprocess.CompletedProcess:
    tests = Path(__file__).parent
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nbval_tolerance",
         "--nbval", "--nbval-current-env", str(path)],
        capture_output=True, text=True, cwd=path.parent, timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(tests)})


def test_plugin_in_nbval_accepts_rounding_and_rejects_a_stale_output(tmp_path):
    ok = _notebook(tmp_path / "ok.ipynb", "print(f'{0.1 + 0.2:.3f} and {2**10}')", "0.301 and 1024\n")
    stale = _notebook(tmp_path / "stale.ipynb", "print(f'{0.1 + 0.2:.3f} and {2**10}')", "0.300 and 1025\n")
    loose = _notebook(tmp_path / "loose.ipynb", "print('acc 0.3311')", "acc 0.3356\n", {"nbval": {"rtol": 0.02, "reason": "spread across kernels"}})
    tight = _notebook(tmp_path / "tight.ipynb", "print('acc 0.3311')", "acc 0.3356\n")
    result = _nbval(ok)
    assert result.returncode == 0, result.stdout
    result = _nbval(stale)
    assert result.returncode == 1 and "1025" in result.stdout, result.stdout
    assert _nbval(loose).returncode == 0
    result = _nbval(tight)
    assert result.returncode == 1 and "rtol=0.0001" in result.stdout, result.stdout
