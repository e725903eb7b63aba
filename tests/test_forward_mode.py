"""Forward mode (jvp), Hessian-vector products and Hessians, against hand-derived values.

jvp carries tangents through the graph with the same rules as backward, so it
must agree with reverse mode (checked here on closed forms, and on random
expressions in tests/test_paths.py), nest with grad, and treat zero times
infinity as zero just as backward does.
"""

from __future__ import annotations

import math

import pytest

import microgrannd as mg
from microgrannd import Value


def f(x, y):
    return x * x * y + mg.sin(x) * y


def test_jvp_is_the_directional_derivative() -> None:
    x, y = 1.3, -0.7
    value, tangent = mg.jvp(f, [x, y], [0.5, 2.0])
    assert value == pytest.approx(x * x * y + math.sin(x) * y, rel=1e-15)
    dfdx, dfdy = 2 * x * y + math.cos(x) * y, x * x + math.sin(x)
    assert tangent == pytest.approx(0.5 * dfdx + 2.0 * dfdy, rel=1e-14)
    assert type(value) is float and type(tangent) is float


def test_jvp_of_several_outputs_and_of_constants() -> None:
    values, tangents = mg.jvp(lambda a: (a * a, a * 3.0, 5.0), [2.0], [1.0])
    assert values == [4.0, 6.0, 5.0] and tangents == [4.0, 3.0, 0.0]
    assert mg.jvp(lambda a: 2.0, [1.0], [1.0]) == (2.0, 0.0)
    with pytest.raises(ValueError, match="tangents"):
        mg.jvp(f, [1.0, 2.0], [1.0])


def test_hvp_and_hessian_match_the_closed_form() -> None:
    x, y = 0.4, 1.7
    hxx, hxy, hyy = 2 * y - math.sin(x) * y, 2 * x + math.cos(x), 0.0
    h = mg.hessian(f)(x, y)
    assert h[0] == pytest.approx([hxx, hxy], rel=1e-14)
    assert h[1] == pytest.approx([hxy, hyy], rel=1e-14, abs=1e-15)
    v = [0.3, -2.0]
    assert mg.hvp(f, [x, y], v) == pytest.approx([hxx * 0.3 + hxy * -2.0, hxy * 0.3 + hyy * -2.0], rel=1e-13)


def test_jvp_nests_with_grad_both_ways() -> None:
    # reverse over forward: d/dx of (d/dx x^3 by jvp) = 6x
    assert mg.grad(lambda x: mg.jvp(lambda a: a * a * a, [x], [1.0])[1])(2.0) == 12.0
    # forward over forward: the second derivative of exp(2x) is 4 exp(2x)
    inner = lambda x: mg.jvp(lambda a: mg.exp(a * 2.0), [x], [1.0])[1]
    assert mg.jvp(inner, [0.5], [1.0])[1] == pytest.approx(4 * math.exp(1.0), rel=1e-15)
    # at Values the results are Values (a graph to differentiate further)
    value, tangent = mg.jvp(lambda a: a * a, [Value(3.0)], [1.0])
    assert isinstance(value, Value) and isinstance(tangent, Value) and tangent.data == 6.0


@pytest.mark.parametrize(
    ("name", "fn", "x"),
    [
        ("sigmoid at -800", mg.sigmoid, -800.0),
        ("sigmoid at 800", mg.sigmoid, 800.0),
        ("tanh(exp(x)) at 800", lambda a: mg.tanh(mg.exp(a)), 800.0),
        ("relu(x) ** 0.5 at -1", lambda a: mg.relu(a) ** 0.5, -1.0),
    ],
)
def test_saturation_gives_zero_not_nan(name, fn, x) -> None:
    """An overflowed tangent times a zero local derivative sends nothing on, as in backward."""
    assert mg.jvp(fn, [x], [1.0])[1] == 0.0
    assert mg.hvp(fn, [x], [1.0]) == [0.0]


def test_jvp_keeps_underflow_away_like_backward() -> None:
    for x in (-400.0, -700.0, 30.0):
        expected = 1.0 / (1.0 + math.exp(x)) if x < 0 else math.exp(-x) / (1.0 + math.exp(-x))
        got = mg.jvp(lambda a: mg.log(mg.sigmoid(a)), [x], [1.0])[1]
        assert got == pytest.approx(expected, rel=1e-12)
