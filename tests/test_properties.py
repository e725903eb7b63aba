"""Properties of the engine's derivatives, checked with microgrannd.testing.

Every primitive of the table against finite differences (first and second
order), random expression trees and DAGs against check_grad, and exact
algebraic facts that need no finite differences.  tests/test_mutation.py runs
these against deliberately broken engines and asserts that they fail.
"""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import microgrannd as mg
from microgrannd import PRIMITIVES, Value, apply, gradients
from microgrannd.testing import check_grad, check_grad2
from microgrannd.testing.strategies import dags, expressions, positive, primitive_inputs, reals

EPS = sys.float_info.epsilon


def _free_positions(name: str) -> list[int]:
    prim = PRIMITIVES[name]
    return [k for k in range(prim.arity) if k not in prim.constant_args]


def _as_function(name: str, args: tuple[float, ...]):
    """The primitive as a function of its non-constant inputs, constants fixed."""
    prim = PRIMITIVES[name]
    free = _free_positions(name)

    def f(*xs):
        full = list(args)
        for k, x in zip(free, xs, strict=True):
            full[k] = x
        return apply(prim, *full)

    f.__qualname__ = f"{name}{args!r}"
    return f


# --- every primitive of the table, on its domain

@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.differentiable and p.arity >= 0))
@given(data=st.data())
def test_primitive_first_derivative(name, data):
    args = data.draw(primitive_inputs(PRIMITIVES[name]), label="args")
    f = _as_function(name, args)
    check_grad(f, [args[k] for k in _free_positions(name)])


@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.differentiable and p.arity >= 0))
@given(data=st.data())
def test_primitive_second_derivative(name, data):
    args = data.draw(primitive_inputs(PRIMITIVES[name]), label="args")
    f = _as_function(name, args)
    check_grad2(f, [args[k] for k in _free_positions(name)])


# --- random expressions

@given(expressions(variables=3, max_depth=5))
def test_trees_against_check_grad(expr):
    check_grad(expr, expr.point)


@given(dags(variables=3, max_nodes=10))
def test_dags_against_check_grad(expr):
    check_grad(expr, expr.point)


@given(expressions(variables=2, max_depth=3))
def test_trees_second_order(expr):
    check_grad2(expr, expr.point)


@given(dags(variables=2, max_nodes=6))
def test_dags_second_order(expr):
    check_grad2(expr, expr.point)


# --- exact algebra, no finite differences

@given(reals(-1e6, 1e6), reals(-1e6, 1e6))
def test_product_gradients_are_exactly_the_other_factor(a, b):
    x, y = Value(a), Value(b)
    z = x * y
    z.backward()
    assert (x.grad, y.grad) == (b, a)
    table = gradients(x * y)
    assert (table[x], table[y]) == (b, a)


@given(reals())
def test_x_plus_x_plus_x_has_gradient_exactly_three(a):
    x = Value(a)
    (x + x + x).backward()
    assert x.grad == 3.0
    assert gradients(x + x + x)[x] == 3.0
    assert mg.grad(lambda v: v + v + v)(a) == 3.0


@given(reals(), reals())
def test_reused_interior_node_accumulates(a, b):
    x, y = Value(a), Value(b)
    s = x + y
    t = s + s  # s is used twice here,
    w = t + x
    u = w + s  # and once more, nearer the output: u = 3s + x
    # s must get all three contributions before passing its gradient on, so
    # the order must follow the graph, not the distance from the output
    u.backward()
    assert (x.grad, y.grad) == (4.0, 3.0)
    table = gradients(u)
    assert (table[x], table[y]) == (4.0, 3.0)


@given(reals(-3, 3), reals(-3, 3))
def test_unused_inputs_get_exactly_zero(a, b):
    x, y = Value(a), Value(b)
    out = mg.tanh(x * 2.5) + x
    out.backward()
    assert y.grad == 0.0 and type(y.grad) is float
    assert gradients(out).get(y, 0.0) == 0.0
    assert mg.grad(lambda u, v: mg.tanh(u * 2.5) + u, argnums=1)(a, b) == 0.0


@given(positive(1e-3, 1e3))
def test_exp_of_log_has_gradient_one_within_a_few_ulps(a):
    x = Value(a)
    mg.exp(mg.log(x)).backward()
    # exp(log(a)) carries the rounding of log(a), about |log a| ulps, amplified by exp
    assert abs(x.grad - 1.0) <= (2 * abs(math.log(a)) + 4) * EPS


@given(positive(1e-3, 1e3), reals(-3, 3))
def test_value_power_agrees_with_pow_primitive(a, n):
    x = Value(a)
    (x ** Value(n)).backward()
    y = Value(a)
    (y ** n).backward()
    assert math.isclose(x.grad, y.grad, rel_tol=1e-12, abs_tol=1e-300)


# --- second derivatives: symmetry and closed forms

@given(reals(-3, 3), reals(-3, 3))
def test_mixed_partials_of_a_product_are_exactly_one(a, b):
    h = check_grad2(lambda x, y: x * y, [a, b])
    assert h == [[0.0, 1.0], [1.0, 0.0]]
    assert mg.grad(mg.grad(lambda x: x * x))(a) == 2.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


SECOND_DERIVATIVES = {
    "exp": (mg.exp, lambda x: math.exp(x), reals(-5, 5)),
    "log": (mg.log, lambda x: -1.0 / (x * x), positive(0.05, 10)),
    "reciprocal": (mg.reciprocal, lambda x: 2.0 / x**3, st.one_of(reals(0.1, 5), reals(-5, -0.1))),
    "tanh": (mg.tanh, lambda x: -2.0 * math.tanh(x) * (1.0 - math.tanh(x) ** 2), reals(-5, 5)),
    "sigmoid": (mg.sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x)), reals(-8, 8)),
    "sigmoid_fused": (
        mg.sigmoid_fused, lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x)), reals(-8, 8)
    ),
    "softplus": (mg.softplus, lambda x: _sigmoid(x) * (1 - _sigmoid(x)), reals(-8, 8)),
    "cube": (lambda x: x**3, lambda x: 6.0 * x, reals(-5, 5)),
    "x^-2": (lambda x: x**-2, lambda x: 6.0 * x**-4, st.one_of(reals(0.2, 5), reals(-5, -0.2))),
}


@pytest.mark.parametrize("name", sorted(SECOND_DERIVATIVES))
@given(data=st.data())
def test_second_derivative_closed_forms(name, data):
    f, expected, domain = SECOND_DERIVATIVES[name]
    x = data.draw(domain, label="x")
    got = mg.grad(mg.grad(f))(x)
    want = expected(x)
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (got, want)


@given(reals(-3, 3))
def test_third_derivative_of_x_to_the_fourth(a):
    assert math.isclose(mg.grad(mg.grad(mg.grad(lambda x: x**4)))(a), 24.0 * a, rel_tol=1e-12, abs_tol=1e-12)


@given(reals(-3, 3))
def test_grad_differentiates_inside_no_grad(a):
    # grad is a function transform: an enclosing no_grad() must not turn its
    # derivative into a silent 0.0
    with mg.no_grad():
        assert mg.grad(lambda x: x * x)(a) == 2.0 * a
        second = mg.grad(mg.grad(lambda x: x * x * x))(a)
        assert (Value(a) * 2.0).op == ""  # outside grad, no_grad still holds
    assert math.isclose(second, 6.0 * a, rel_tol=1e-15, abs_tol=1e-300)
