"""grad / value_and_grad: nesting, argnums, create_graph, closed forms."""

from __future__ import annotations

import math

import pytest

import microgrannd as mg
from microgrannd import Value


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@pytest.mark.parametrize("x", [-3.0, -0.5, 0.0, 0.3, 2.0])
def test_second_derivative_of_sigmoid(x: float) -> None:
    s = sig(x)
    assert mg.grad(mg.grad(mg.sigmoid))(x) == pytest.approx(s * (1 - s) * (1 - 2 * s), rel=1e-10, abs=1e-15)
    assert mg.grad(mg.grad(mg.sigmoid_fused))(x) == pytest.approx(s * (1 - s) * (1 - 2 * s), rel=1e-10, abs=1e-15)


@pytest.mark.parametrize("x", [-2.0, -0.1, 0.0, 0.7, 3.0])
def test_second_derivative_of_tanh(x: float) -> None:
    t = math.tanh(x)
    assert mg.grad(mg.grad(mg.tanh))(x) == pytest.approx(-2 * t * (1 - t * t), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("x", [-1.5, 0.0, 0.5, 2.0])
def test_third_derivative_of_x_to_the_fourth(x: float) -> None:
    d3 = mg.grad(mg.grad(mg.grad(lambda v: v**4)))
    assert d3(x) == pytest.approx(24 * x, rel=1e-12, abs=1e-12)
    assert mg.grad(mg.grad(mg.grad(mg.grad(lambda v: v**4))))(x) == pytest.approx(24.0, rel=1e-12)


def test_higher_derivatives_of_exp_log_and_division() -> None:
    x = 0.7
    assert mg.grad(mg.grad(mg.grad(mg.exp)))(x) == pytest.approx(math.exp(x), rel=1e-14)
    assert mg.grad(mg.grad(mg.log))(x) == pytest.approx(-1 / x**2, rel=1e-14)
    assert mg.grad(mg.grad(lambda v: 1 / v))(x) == pytest.approx(2 / x**3, rel=1e-14)
    assert mg.grad(mg.grad(lambda v: v**v))(x) == pytest.approx(
        x**x * ((math.log(x) + 1) ** 2 + 1 / x), rel=1e-12
    )


def test_float_in_float_out_and_value_in_value_out() -> None:
    d = mg.grad(mg.sigmoid)
    assert type(d(0.3)) is float
    assert isinstance(d(Value(0.3)), Value)


def test_argnums_and_value_and_grad() -> None:
    f = lambda x, y: x * y * y + x
    assert mg.grad(f)(2.0, 3.0) == 10.0
    assert mg.grad(f, argnums=1)(2.0, 3.0) == 12.0
    assert mg.grad(f, argnums=(0, 1))(2.0, 3.0) == (10.0, 12.0)
    value, g = mg.value_and_grad(f)(2.0, 3.0)
    assert (value, g) == (20.0, 10.0)
    with pytest.raises(IndexError):
        mg.grad(f, argnums=2)(1.0, 2.0)


def test_mixed_partials_are_symmetric() -> None:
    f = lambda x, y: mg.sigmoid(x * y) * mg.exp(y)
    dxy = mg.grad(lambda x, y: mg.grad(f, 0)(x, y), 1)(0.4, -0.9)
    dyx = mg.grad(lambda x, y: mg.grad(f, 1)(x, y), 0)(0.4, -0.9)
    assert dxy == pytest.approx(dyx, rel=1e-12)


def test_nested_grads_keep_their_variables_apart() -> None:
    # d/dx [ x * d/dy (x * y) ] = d/dx [x * x] = 2x, not 3x or 4x
    g = mg.grad(lambda x: x * mg.grad(lambda y: x * y)(x))
    assert g(1.5) == 3.0


def test_nested_grad_sees_enclosing_values_used_in_its_closure() -> None:
    # the inner derivative is taken at a plain number, but depends on x
    g = mg.grad(lambda x: x * mg.grad(lambda y: x * y)(1.0))
    assert g(3.0) == 6.0
    assert type(mg.grad(lambda y: 2 * y)(1.0)) is float  # top level stays float


def test_functions_that_ignore_their_input_have_zero_derivative() -> None:
    assert mg.grad(lambda x: 3.0)(1.0) == 0.0
    assert mg.grad(lambda x, y: y * 2, argnums=0)(1.0, 5.0) == 0.0
    assert mg.grad(mg.grad(lambda x: x * 2))(1.0) == 0.0


def test_grad_does_not_touch_outside_values() -> None:
    w = Value(3.0)
    assert mg.grad(lambda x: w * x)(2.0) == 3.0
    assert w.grad == 0.0


def test_backward_with_create_graph_then_backward_again() -> None:
    x = Value(0.3)
    y = mg.sigmoid(x)
    y.backward(create_graph=True)
    g = x.grad
    assert isinstance(g, Value)
    s = sig(0.3)
    assert g.data == pytest.approx(s * (1 - s), rel=1e-14)
    x.grad = 0.0
    g.backward()
    assert x.grad == pytest.approx(s * (1 - s) * (1 - 2 * s), rel=1e-12)
