"""Fingerprints identify functions, not strings; the screen rejects candidates not worth training."""

from __future__ import annotations

import numpy as np
import pytest

from search_space import parse
from search_space.fingerprint import PROBES, _quantize, probe

SAME = [
    ("max(x, 0)", "-min(-x, 0)"),
    ("x * sigmoid(x)", "sigmoid(x) * x"),
    ("x * sigmoid(x)", "x / (1 + exp(-x))"),
    ("x + beta", "beta + x"),
    ("x**2", "x * x"),
    ("sinh(x)", "(exp(x) - exp(-x)) / 2"),
    ("abs(x)", "max(x, -x)"),
    ("x * sigmoid(beta * x)", "sigmoid(beta * x) * x"),
]
DIFFERENT = [
    ("x * sigmoid(beta * x)", "x * sigmoid(x)"),  # learnable beta is not its beta = 1 special case
    ("beta * x", "x"),
    ("x", "2 * x"),
    ("x", "x + 1e-6"),
    ("max(x, 0)", "softplus(x)"),
    ("sqrt(x)", "-sqrt(x)"),  # both NaN for x < 0, different elsewhere
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_equal_functions_written_differently_share_a_fingerprint(a: str, b: str) -> None:
    assert parse(a).fingerprint() == parse(b).fingerprint()


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_functions_get_different_fingerprints(a: str, b: str) -> None:
    assert parse(a).fingerprint() != parse(b).fingerprint()


def test_fingerprint_is_a_stable_hex_string() -> None:
    fingerprint = parse("x * sigmoid(x)").fingerprint()
    assert len(fingerprint) == 32 and int(fingerprint, 16) >= 0
    assert parse("x * sigmoid(x)").fingerprint() == fingerprint


def test_non_finite_values_are_handled_deterministically() -> None:
    a, b = parse("sqrt(x)"), parse("sqrt(x) * 1")
    assert a.fingerprint() == b.fingerprint()
    assert parse("log(x)").fingerprint() == parse("log(x) + 0").fingerprint()


def test_slopes_are_part_of_the_fingerprint() -> None:
    values, slopes = probe(parse("x**3"))[0]
    x = np.array(PROBES)
    assert np.allclose(values.numpy(), x**3)
    assert np.allclose(slopes.numpy(), 3 * x**2)
    # a ripple that vanishes at every probe point changes the slopes only
    rippled = parse("x**3 + 0.001 * sin(12.566370614359172 * (x - 0.0123))")
    rippled_values, _ = probe(rippled)[0]
    assert (_quantize(rippled_values.numpy()) == _quantize(values.numpy())).all()
    assert parse("x**3").fingerprint() != rippled.fingerprint()


def test_quantize_absorbs_float_noise_but_not_real_differences() -> None:
    base = np.array([1.0, -3.5, 1e-3, 123456.7, 0.0])
    noisy = base * (1 + 1e-15) + np.array([0, 0, 0, 0, 1e-17])
    assert (_quantize(base) == _quantize(noisy)).all()
    assert (_quantize(base) != _quantize(base * (1 + 1e-6)))[:4].all()
    assert _quantize(np.array([np.nan, np.inf, -np.inf])).tolist() == [2**62, 2**62 + 1, 2**62 + 2]
    assert _quantize(np.array([0.9999999999999999]))[0] == _quantize(np.array([1.0]))[0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sqrt(x)", "non-finite value nan"),
        ("x / (0 * x)", "non-finite"),
        ("x - x", "constant: f(x) = 0"),
        ("beta", "constant: f(x) = 1"),
        ("sigmoid(x) * 0 + 2", "constant: f(x) = 2"),
    ],
)
def test_screen_rejects_with_a_reason(text: str, reason: str) -> None:
    result = parse(text).screen()
    assert not result.ok and not result
    assert reason in result.reason


@pytest.mark.parametrize("text", ["x * sigmoid(beta * x)", "max(x, 0)", "(beta - 1) * x", "log(abs(x) + eps)"])
def test_screen_accepts_trainable_candidates(text: str) -> None:
    assert parse(text).screen().ok


@pytest.mark.parametrize(("a", "b"), [("max(x, 0)", "2 * max(x, 0) + 1"), ("x * sigmoid(beta * x)",
                                      "0.5 * (x * sigmoid(beta * x)) - 3"), ("tanh(x)", "tanh(x) + tanh(x)")])
def test_affine_fingerprint_merges_positive_scale_and_offset(a: str, b: str) -> None:
    assert parse(a).fingerprint(affine=True) == parse(b).fingerprint(affine=True)
    assert parse(a).fingerprint() != parse(b).fingerprint()


@pytest.mark.parametrize(("a", "b"), [("max(x, 0)", "-max(x, 0)"), ("x * sigmoid(beta * x)", "x * sigmoid(x)"),
                                      ("x + beta + abs(x)", "x + abs(x)"), ("max(x, 0)", "abs(x)")])
def test_affine_fingerprint_keeps_other_differences(a: str, b: str) -> None:
    # A sign flip, a learnable scale and a learnable offset change how the candidate trains: not merged.
    assert parse(a).fingerprint(affine=True) != parse(b).fingerprint(affine=True)
