"""The gradient checker itself: what it accepts, what it rejects, what it says."""

from __future__ import annotations

import copy
import math
import pickle
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
    ORACLES,
    PATHS,
    GradcheckError,
    GradcheckReport,
    Gradient,
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
    # analytic 2 * 1.5**2, numeric about 3 * 1.5**2, the same on every path
    found = re.search(r"input 0 \[backward, gradients, create_graph\]: analytic 4\.5, numeric (\S+),", message)
    assert found and abs(float(found.group(1)) - 6.75) < 1e-9, message
    assert "difference 2.25" in message and "tolerance" in message
    assert "input 1" not in message  # only mismatched inputs are listed
    # which oracles disagreed, and which node's rule is wrong, at which input
    assert "oracles: finite differences: disagrees; Taylor remainder: disagrees" in message
    assert "cube_wrong(1.5), input 0: the rule gives 4.5 on floats and 4.5 on Values" in message
    assert "cube_wrong's rule is wrong on floats and on Values" in message
    assert info.value.report.failed == ("backward", "gradients", "create_graph")


def test_wrong_derivative_near_a_kink_is_still_wrong(register):
    # relu's rule doubled: away from 0 the finite differences are reliable
    rule = lambda a, out: (2.0 if a > 0 else 0.0,)
    register(Primitive(name="relu2", arity=1, forward=lambda a: max(a, 0.0), derivatives=rule, symbol="r"))
    with pytest.raises(GradcheckError):
        check_grad(lambda x: apply("relu2", x), [1.0])
    with pytest.raises(GradcheckError):
        check_grad(lambda x: apply("relu2", x), [1e-3])


def test_a_rule_wrong_on_values_only_is_caught_at_first_order(register):
    # right on floats (backward), wrong when the rule runs on Values (create_graph, grad of grad)
    rule = lambda a, out: (3.0 * a * a if type(a) is float else 3.0 * a * a + 1e-3,)
    register(Primitive(name="cube_v", arity=1, forward=lambda a: a**3, derivatives=rule, symbol="c"))
    f = lambda x: apply("cube_v", x)
    for check in (check_grad, check_grad2):
        with pytest.raises(GradcheckError) as info:
            check(f, [1.5])  # not NumericallyUnreliable("kink"): values and stencil are computed alike
        message = str(info.value)
        assert "input 0 [create_graph]" in message and "[backward vs create_graph]" in message
        assert "cube_v's rule is wrong on Values" in message


def test_grad_on_values_and_on_floats_must_agree(register):
    # the rule is wrong on Values by 1%: grad(f) on Values differs from grad(f) on floats
    rule = lambda a, out: (3.0 * a * a if type(a) is float else 1.01 * 3.0 * a * a,)
    register(Primitive(name="cube_w", arity=1, forward=lambda a: a**3, derivatives=rule, symbol="c"))
    first = mg.grad(lambda x: apply("cube_w", x))
    with pytest.raises(GradcheckError, match=r"value \[Values vs floats\]"):
        check_grad(first, [0.8])
    # a function of the user's that computes something else on floats
    with pytest.raises(GradcheckError, match=r"value \[Values vs floats\]: 2.0 on Values, 2.5 on floats"):
        check_grad(lambda x: x * 2.0 if isinstance(x, Value) else x * 2.5, [1.0])


def test_check_grad2_checks_the_first_derivative_too(register):
    # 1.01 times too large: its own derivative agrees with the engine's second derivative
    register(Primitive(name="cube_x", arity=1, forward=lambda a: a**3,
                       derivatives=lambda a, out: (1.01 * 3.0 * a * a,), symbol="c"))
    with pytest.raises(GradcheckError, match="derivatives disagree"):
        check_grad2(lambda x: apply("cube_x", x), [1.5])


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
    message = str(info.value)
    assert "grad(" in message and "0.7" in message
    # the rule is named: its result on Values does not differentiate to the rule's own slope
    assert "cube_frozen(0.7): the derivative of the rule's entry 0 with respect to input 0 is 0.0 on Values" in message
    assert "cube_frozen's rule on Values does not carry its own derivative" in message


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


# --- the oracles and the report


def test_the_report_says_which_oracles_agreed():
    grads = check_grad(lambda x, y: mg.tanh(x * y) + mg.exp(x), [0.3, -0.7])
    assert grads == tuple(grads) and type(grads) is Gradient  # a tuple, as before
    report = grads.report
    assert isinstance(report, GradcheckReport) and report.gradient == tuple(grads)
    assert report.agreed == list(ORACLES) and report.paths == PATHS and report.failed == ()
    slope = float(re.search(r"h\^(\S+)\)", report.oracles["Taylor remainder"]).group(1))
    assert 1.8 < slope < 2.3  # the remainder shrinks as h²
    text = str(report)
    assert all(name in text for name in ORACLES)
    again = pickle.loads(pickle.dumps(grads))
    assert again == grads and again.report == report and copy.copy(grads).report == report


def test_the_taylor_remainder_of_a_wrong_gradient_shrinks_as_h(register):
    register(Primitive(name="cube_t", arity=1, forward=lambda a: a**3,
                       derivatives=lambda a, out: (3.03 * a * a,), symbol="c"))
    with pytest.raises(GradcheckError) as info:
        check_grad(lambda x: apply("cube_t", x), [1.2])
    verdict = info.value.report.oracles["Taylor remainder"]
    slope = float(re.search(r"h\^(\S+), not h\^2", verdict).group(1))
    assert verdict.startswith("disagrees") and 0.9 < slope < 1.1


def test_the_taylor_remainder_decides_where_finite_differences_are_unstable(register):
    # next to the pole of 1/x central differences are unstable; a 1% error is still caught
    recip = PRIMITIVES["reciprocal"]
    register(Primitive(name="recip_1pc", arity=1, forward=recip.forward,
                       vjp=lambda g, a, out: (-(g * out) * out * 1.01,), symbol="r"))
    x = 3e-5
    with pytest.raises(NumericallyUnreliable) as unreliable:
        check_grad(mg.reciprocal, [x])  # the right rule: finite differences cannot tell
    assert unreliable.value.reason == "unstable"
    with pytest.raises(GradcheckError) as info:
        check_grad(lambda v: apply("recip_1pc", v), [x])
    message = str(info.value)
    assert "Taylor remainder [backward, gradients, create_graph]: the remainder shrinks as h^1" in message
    assert "finite differences: unreliable; Taylor remainder: disagrees" in message


def test_the_adjoint_identity_compares_forward_and_reverse_mode(monkeypatch):
    import microgrannd.testing.gradcheck as gradcheck

    def skewed_jvp(f, primals, tangents):
        value, tangent = mg.jvp(f, primals, tangents)
        return value, tangent * 1.001

    check_grad(lambda x, y: x * mg.sin(y), [0.5, 1.5])
    monkeypatch.setattr(gradcheck, "jvp", skewed_jvp)
    with pytest.raises(GradcheckError, match=r"forward/reverse adjoint: mg\.jvp gives J·w = ") as info:
        check_grad(lambda x, y: x * mg.sin(y), [0.5, 1.5])
    assert info.value.report.failed == ("forward/reverse adjoint",)


def test_forward_mode_overflowing_where_backward_does_not_is_no_false_alarm():
    # the second derivative of softplus(3x) at -236.5 is about 1e-308; forward over reverse
    # carries a tangent of 2.4 * exp(709.5), which overflows, while backward keeps it small
    second = mg.grad(lambda x: mg.softplus(x * 3.0))
    assert mg.jvp(second, [-236.5], [0.8])[1] == math.inf
    verdict = check_grad(second, [-236.5]).report.oracles["forward/reverse adjoint"]
    assert verdict.startswith("agrees") and "along a scaled w" in verdict


def test_when_the_rules_are_right_the_message_says_so(monkeypatch):
    original = Value.backward

    def scaled(self, gradient=1.0, *, create_graph=False):
        original(self, 1.5 * gradient, create_graph=create_graph)

    monkeypatch.setattr(Value, "backward", scaled)
    with pytest.raises(GradcheckError) as info:
        check_grad(lambda x: mg.exp(x) * x, [0.4])
    message = str(info.value)
    failed = info.value.report.failed
    assert "backward" in failed and "gradients" not in failed  # gradients() does not go through backward
    assert "local rules: 2 of 2 nodes' rules agree with their forward functions" in message


def test_a_failing_expression_is_shown_as_code(register):
    from microgrannd.testing.strategies import Expression, Node, operations

    register(Primitive(name="cube_e", arity=1, forward=lambda a: a**3,
                       derivatives=lambda a, out: (2.0 * a * a,), symbol="c"))
    ops = {op.name: op for op in operations()}
    expr = Expression(1, [Node(ops["cube_e"], (0,)), Node(ops["mul"], (1, 1))], point=(0.7,))
    with pytest.raises(GradcheckError) as info:
        check_grad(expr, expr.point)
    message = str(info.value)
    assert message.startswith("check_grad(Expression) at inputs (0.7,)")
    assert "  f as code:\n    v1 = cube_e(x0)\n    v1 * v1\n" in message
    assert "cube_e(0.7), input 0: the rule gives" in message


def test_a_function_that_returns_no_number_gets_a_clear_type_error():
    def no_return(x):
        x * 2.0

    for f, what in [(no_return, "None"), (lambda x: "x", "a str ('x')"), (lambda x: (x, x), "a tuple")]:
        with pytest.raises(TypeError) as info:
            check_grad(f, [1.0])
        message = str(info.value)
        assert what in message and "must return one Value or number" in message
        assert ("no_return" if f is no_return else "<lambda>") in message


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


def test_no_false_alarm_at_the_issues_constants():
    f = lambda x: 3.2956212316547954e-200 * (5.458915783827468e-112 * (5.045419583098643e100 * x))
    check_grad(f, [1.0])


@given(st.integers(-250, -150), st.integers(-322, -309), st.integers(0, 200),
       st.floats(1.0, 9.99), st.floats(1.0, 9.99), st.floats(1.0, 9.99))
def test_a_subnormal_gradient_on_the_way_is_no_false_alarm(e1, e12, e3, m1, m2, m3):
    # the gradient reaching the inner product is c1 * c2, subnormal: its rounding does
    # not scale with the seed, so backward(-2) is -2 times the gradient only to rounding
    c1, c2, c3 = m1 * 10.0**e1, m2 * 10.0 ** (e12 - e1), m3 * 10.0**e3
    check_grad(lambda x: c1 * (c2 * (c3 * x)), [1.0])


def test_a_slope_finite_differences_cannot_see_is_no_false_alarm():
    # cos is even: at x1 = 7e-248 its finite-difference slope is exactly 0, its rule's
    # -7e-248; the second backward's rounding is bounded by the terms the engine adds
    f = lambda x0, x1: mg.cos(mg.sin(mg.cos(x1)) / mg.cos(mg.cos(x1)))
    check_grad(f, [0.0, 6.788768836711356e-248])


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
