"""The gradient checker itself: what it accepts, what it rejects, what it says."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microgrannd as mg
from microgrannd import PRIMITIVES, Primitive, Value, apply
from microgrannd.ops import primitive
from microgrannd.testing import (
    GradcheckError,
    NumericallyUnreliable,
    check_grad,
    check_grad2,
    numerical_grad,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def register() -> Iterator:
    """Add primitives to the table for one test and take them out afterwards."""
    added: list[str] = []

    def add(p: Primitive) -> Primitive:
        added.append(p.name)
        return primitive(p)

    yield add
    for name in added:
        PRIMITIVES.pop(name, None)


# --- agreeing derivatives pass and are returned


def test_returns_the_gradient_of_a_correct_function():
    f = lambda x, y: x * y + mg.exp(x)
    gx, gy = check_grad(f, [0.5, -2.0])
    assert math.isclose(gx, -2.0 + math.exp(0.5), rel_tol=1e-15)
    assert gy == 0.5


def test_numerical_grad_is_accurate():
    got = numerical_grad(lambda x, y: mg.tanh(x) * mg.log(y), [0.3, 2.0])
    want = [(1 - math.tanh(0.3) ** 2) * math.log(2.0), math.tanh(0.3) / 2.0]
    for g, w in zip(got, want, strict=True):
        assert abs(g - w) < 1e-10


def test_numerical_grad_accepts_functions_that_need_values():
    # x.exp() exists on Values only: the checker falls back to calling f on Values
    assert abs(numerical_grad(lambda x: x.exp(), [1.0])[0] - math.e) < 1e-9


def test_constant_function_and_integer_inputs():
    assert check_grad(lambda x, y: 3.0, [1, 2]) == (0.0, 0.0)
    assert check_grad(lambda x, y: x * 0.0 + y, [1, 2]) == (0.0, 1.0)


def test_rounding_in_f_is_not_a_failure():
    # f(x) = x, computed with a large cancellation: f's rounding error is about
    # eps * 1e8, so its finite differences are noisy; the tolerance accounts for it
    check_grad(lambda x: (x + 1e8) - 1e8, [0.7])
    check_grad(lambda x: mg.exp(x + 20.0) * mg.exp(-20.0 - x) * x, [0.3])


# --- wrong derivatives fail, with a message that says what went wrong


def test_wrong_rule_raises_gradcheck_error_naming_everything(register):
    register(Primitive(name="cube_wrong", arity=1,
        forward=lambda a: a**3,
        derivatives=lambda a, out: (2.0 * a * a,), symbol="cube"))

    def my_function(x, y):
        return apply("cube_wrong", x) + y

    with pytest.raises(GradcheckError) as info:
        check_grad(my_function, [1.5, 0.25])
    assert isinstance(info.value, AssertionError)
    message = str(info.value)
    assert "my_function" in message
    assert "(1.5, 0.25)" in message
    # analytic 2 * 1.5**2, numeric about 3 * 1.5**2
    found = re.search(r"input 0 \[backward\]: analytic 4\.5, numeric (\S+),", message)
    assert found and abs(float(found.group(1)) - 6.75) < 1e-9, message
    assert "input 0 [gradients]" in message
    assert "difference 2.25" in message and "tolerance" in message
    assert "input 1" not in message  # only mismatched inputs are listed


def test_wrong_derivative_near_a_kink_is_still_wrong(register):
    # relu's rule doubled: away from 0 the finite differences are reliable
    rule = lambda a, out: (2.0 if a > 0 else 0.0,)
    register(Primitive(name="relu2", arity=1, forward=lambda a: max(a, 0.0), derivatives=rule, symbol="r"))
    with pytest.raises(GradcheckError):
        check_grad(lambda x: apply("relu2", x), [1.0])
    with pytest.raises(GradcheckError):
        check_grad(lambda x: apply("relu2", x), [1e-3])


def test_second_order_rule_that_is_not_plain_arithmetic(register):
    # reading a's number freezes the derivative into a constant: first order is
    # right, second order through the graph is lost
    def frozen(a, out):
        return (3.0 * (a.data if isinstance(a, Value) else a) ** 2,)

    register(Primitive(name="cube_frozen", arity=1, forward=lambda a: a**3, derivatives=frozen, symbol="c"))
    f = lambda x: apply("cube_frozen", x)
    check_grad(f, [0.7])
    with pytest.raises(GradcheckError) as info:
        check_grad2(f, [0.7])
    assert "grad(" in str(info.value) and "0.7" in str(info.value)


# --- points where finite differences cannot decide


def test_kink_is_unreliable_not_wrong():
    with pytest.raises(NumericallyUnreliable) as info:
        check_grad(mg.relu, [0.0])
    assert info.value.reason == "kink"
    assert not isinstance(info.value, AssertionError)
    assert "kink" in str(info.value)
    with pytest.raises(NumericallyUnreliable):
        check_grad(lambda x: mg.leaky_relu(x * 3.0 - 1.5), [0.5])


def test_nearby_pole_is_unreliable():
    with pytest.raises(NumericallyUnreliable) as info:
        check_grad(mg.reciprocal, [1e-5])
    assert info.value.reason == "unstable"
    check_grad(mg.reciprocal, [1e-2])  # far enough from the pole for the stencil


def test_stencil_outside_the_domain_is_unreliable():
    with pytest.raises(NumericallyUnreliable) as info:
        check_grad(lambda x: x**0.5, [0.0])
    assert info.value.reason == "undefined"
    assert "undefined" in str(info.value)
    with pytest.raises(NumericallyUnreliable):
        numerical_grad(mg.log, [1e-9])


def test_inside_hypothesis_unreliable_points_are_rejected():
    checked = []

    @settings(max_examples=30, database=None)
    @given(st.sampled_from([0.0, 0.5, 2.0]))
    def prop(x):
        check_grad(mg.relu, [x])
        checked.append(x)

    prop()  # neither fails nor errors
    assert 0.0 not in checked and checked


def test_inside_hypothesis_rejection_can_be_turned_off():
    @settings(max_examples=5, database=None)
    @given(st.just(0.0))
    def prop(x):
        check_grad(mg.relu, [x], reject_unreliable=False)

    with pytest.raises(NumericallyUnreliable):
        prop()


def test_works_without_hypothesis():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["hypothesis"] = None  # importing it now raises ImportError
        import microgrannd as mg
        from microgrannd.testing import check_grad, NumericallyUnreliable
        assert check_grad(lambda x: x * x, [3.0]) == (6.0,)
        try:
            check_grad(mg.relu, [0.0])
        except NumericallyUnreliable:
            pass
        else:
            raise SystemExit("no NumericallyUnreliable")
        try:
            import microgrannd.testing.strategies
        except ImportError:
            print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert result.stdout.strip() == "ok", result.stderr


# --- the checks beyond the numbers


def test_unreached_input_must_get_exactly_zero():
    def stray(x, y):
        y.grad = 1e-300  # a stray gradient, far below any numeric tolerance
        return x * 2.0

    with pytest.raises(GradcheckError, match=r"input 1 does not reach the output but its gradient"):
        check_grad(stray, [1.0, 2.0])


def test_fresh_graphs_must_give_identical_gradients(register):
    calls = []

    def drifting(a, out):  # a rule with hidden state, off by an ulp per call
        calls.append(a)
        return (1.0 + len(calls) * 1e-16,)

    register(Primitive(name="drift", arity=1, forward=lambda a: a, derivatives=drifting, symbol="d"))
    with pytest.raises(GradcheckError, match="on a fresh graph gave"):
        check_grad(lambda x: apply("drift", x) * 3.0, [1.0])


def test_seed_must_scale_the_gradient(monkeypatch):
    original = Value.backward

    def ignores_seed(self, gradient=1.0, *, create_graph=False):
        original(self, 1.0, create_graph=create_graph)

    monkeypatch.setattr(Value, "backward", ignores_seed)
    with pytest.raises(GradcheckError, match=r"backward seeded with -2.0 gave 3.0, expected -2.0 \* 3.0"):
        check_grad(lambda x: x * 3.0, [1.0])


def test_second_backward_must_accumulate_into_the_inputs(monkeypatch):
    original = Value.backward

    def forgets(self, gradient=1.0, *, create_graph=False):
        for v in mg.toposort(self):
            v.grad = 0.0
        original(self, gradient, create_graph=create_graph)

    monkeypatch.setattr(Value, "backward", forgets)
    with pytest.raises(GradcheckError, match="a second backward on the same graph"):
        check_grad(lambda x: x * 3.0, [1.0])


# --- second order


def test_hessian_symmetric_and_closed_form():
    f = lambda x, y: x * y * y + mg.exp(x * y)
    x, y = 0.4, -1.3
    h = check_grad2(f, [x, y])
    e = math.exp(x * y)
    want = [[y * y * e, 2 * y + e + x * y * e], [2 * y + e + x * y * e, 2 * x + x * x * e]]
    for i in range(2):
        for j in range(2):
            assert math.isclose(h[i][j], want[i][j], rel_tol=1e-12)
    assert h[0][1] == h[1][0]


def test_second_order_unreliable_at_a_kink_of_the_first_derivative():
    # d/dx relu(x)**2 = 2 relu(x) has a kink at 0
    with pytest.raises(NumericallyUnreliable):
        check_grad2(lambda x: mg.relu(x) * mg.relu(x), [0.0])
