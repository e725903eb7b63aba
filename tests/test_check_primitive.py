"""check_primitive: deliberately wrong rules are caught, the package's own primitives pass.

The wrong rules below are the mistakes a learner makes when writing a
derivative: a factor, a sign or a NaN on one side of zero, a rule that is
right on floats but wrong on Values (so only backward(create_graph=True) and
second derivatives see it), a rule wrong only far from zero, a missing term,
and a rule that reads ``a.data`` on Values (right values, but the graph is
cut, so only second derivatives are wrong).  Each must be caught at fixed
seeds and at any seed hypothesis draws, with the primitive's name in the
message; none of the package's own primitives may fail.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microgrannd import PRIMITIVES, Primitive, Value
from microgrannd.ops import COS, EXP, power, primitive
from microgrannd.testing import GradcheckError, PrimitiveCheck, check_primitive
from microgrannd.testing.primitive import _expressions, _points


@pytest.fixture
def table() -> Iterator[None]:
    """Restore the primitive table after the test, whatever it added."""
    before = dict(PRIMITIVES)
    yield
    PRIMITIVES.clear()
    PRIMITIVES.update(before)


def _cube(name: str, rule, **kw) -> Primitive:
    """x³ (total: overflow gives inf) with the rule under test."""
    return Primitive(name=name, arity=1, forward=lambda a: power(a, 3.0), derivatives=rule, symbol="³", **kw)


def _on_floats(a) -> bool:
    return type(a) is float


WRONG = {
    "factor 1.01": _cube("cube_1_01", lambda a, out: (1.01 * 3.0 * a * a,)),
    "wrong sign for x < 0": _cube("cube_sign", lambda a, out: (3.0 * a * a if a >= 0 else -3.0 * a * a,)),
    "NaN for x < 0": _cube("cube_nan", lambda a, out: (3.0 * a * a if a >= 0 else math.nan,)),
    "right on floats, +1e-3 on Values": _cube(
        "cube_values", lambda a, out: (3.0 * a * a if _on_floats(a) else 3.0 * a * a + 1e-3,)),
    "right on floats, 1.01x on Values": _cube(
        "cube_values_x", lambda a, out: (3.0 * a * a if _on_floats(a) else 1.01 * 3.0 * a * a,)),
    "wrong for |x| > 5 only": _cube("cube_far", lambda a, out: (3.0 * a * a * (1.0 if abs(a) <= 5 else 1.01),)),
    "missing term: (x e^x)' as x e^x": Primitive(
        name="xexp", arity=1, forward=lambda a: a * EXP(a), derivatives=lambda a, out: (a * EXP(a),), symbol="xeˣ"),
    "graph cut on Values (reads a.data): second order only": _cube(
        "cube_frozen", lambda a, out: (3.0 * (a.data if isinstance(a, Value) else a) ** 2,)),
}
# where each must be caught: the order and the path named in the first line of the message
WHERE = {
    "factor 1.01": ("first", "backward"),
    "wrong sign for x < 0": ("first", "backward"),
    "NaN for x < 0": ("first", "backward"),
    "right on floats, +1e-3 on Values": ("first", "create_graph"),
    "right on floats, 1.01x on Values": ("first", "create_graph"),
    "wrong for |x| > 5 only": ("first", "backward"),
    "missing term: (x e^x)' as x e^x": ("first", "backward"),
    "graph cut on Values (reads a.data): second order only": ("second", "backward"),
}
PACKAGE = sorted(n for n, p in PRIMITIVES.items() if p.arity >= 0)  # gather: tests/test_gather.py


def _caught(p: Primitive, seed: int = 0) -> str:
    """check_primitive's message on ``p``, which must fail."""
    with pytest.raises(GradcheckError) as info:
        check_primitive(p, seed=seed)
    assert p.name not in PRIMITIVES  # registered for the check only
    return str(info.value)


# --- wrong rules are caught


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 12345])
@pytest.mark.parametrize("label", list(WRONG))
def test_wrong_rule_is_caught_at_fixed_seeds(label, seed):
    p = WRONG[label]
    message = _caught(p, seed)
    first = message.splitlines()[0]
    assert first.startswith(f"check_primitive({p.name}): ")
    assert f" at {p.name}(" in first  # the point
    order, path = WHERE[label]
    assert f"the {order} derivative is wrong" in first
    assert path in first.rsplit("[", 1)[1]  # the path
    assert f"{p.name}'s rule" in message.split("local rules", 1)[1]  # the local check names the rule


@given(st.sampled_from(list(WRONG)), st.integers(0, 2**63))
def test_wrong_rule_is_caught_at_any_seed(label, seed):
    message = _caught(WRONG[label], seed)
    assert f"check_primitive({WRONG[label].name})" in message


def test_the_region_is_in_the_failing_point():
    for label, region in [("wrong sign for x < 0", lambda x: x < 0), ("NaN for x < 0", lambda x: x < 0),
                          ("wrong for |x| > 5 only", lambda x: abs(x) > 5)]:
        p = WRONG[label]
        for seed in range(5):
            first = _caught(p, seed).splitlines()[0]
            x = float(first.split(f" at {p.name}(")[1].split(")")[0])
            assert region(x), first


def test_a_rule_right_on_floats_is_caught_on_values():
    message = _caught(WRONG["right on floats, 1.01x on Values"], 0)
    assert "on Values" in message and "wrong on Values" in message
    assert "wrong on floats" not in message


# --- the package's own primitives pass


@pytest.mark.parametrize("name", PACKAGE)
def test_package_primitive_passes(name):
    result = check_primitive(name)
    assert isinstance(result, PrimitiveCheck) and result.name == name
    prim = PRIMITIVES[name]
    assert result.points >= 80
    if prim.differentiable:
        assert result.second_order >= 0.9 * result.points
        assert result.expressions >= 25, result
    else:
        assert "differentiable=False" in str(result)
    # the whole declared domain: both signs where valid allows them, and large magnitudes
    free = [k for k in range(prim.arity) if k not in prim.constant_args]
    var = "x" if len(free) == 1 else "x0"
    if prim.valid is None:
        assert result.regions[f"{var} < 0"] >= 20 and result.regions[f"{var} > 0"] >= 20
    assert result.regions[f"|{var}| > 5"] >= 20


@given(st.sampled_from(PACKAGE), st.integers(0, 2**63))
def test_package_primitives_pass_at_any_seed(name, seed):
    # inside a hypothesis test the random expressions are skipped (hypothesis does not nest)
    result = check_primitive(name, seed=seed, examples=5)  # each example is a whole run: a small one
    assert result.points >= 1


# --- determinism and parameters


def test_a_seed_fixes_everything():
    assert check_primitive("tanh", seed=3) == check_primitive("tanh", seed=3)
    far = WRONG["wrong for |x| > 5 only"]
    assert _caught(far, 7) == _caught(far, 7)
    assert len({_caught(far, seed).splitlines()[0] for seed in range(4)}) > 1  # the seed chooses the points


def test_examples_sets_the_amount_of_checking():
    small = check_primitive("sin", examples=10, expressions=4)
    large = check_primitive("sin", examples=60, expressions=0)
    assert small.points == 10 and small.expressions == 4
    assert large.points == 60 and large.expressions == 0


def test_inside_a_hypothesis_test_the_expressions_are_skipped_with_a_note():
    notes = []

    @given(st.just(0))
    def prop(seed):
        notes.append(check_primitive("exp", seed=seed, examples=5).note)

    prop()
    assert notes and all("inside a hypothesis test" in n for n in notes)


def test_points_are_chosen_without_the_rule(table):
    # points depend on the domain and the forward function only: a rule that
    # raises is never called while choosing them, and a rule that is NaN for
    # x < 0 gets the same points as a right one
    def refuse(a, out):
        raise AssertionError("the rule was consulted")

    spy = _cube("cube_spy", refuse)
    right = _cube("cube_right", lambda a, out: (3.0 * a * a,))
    nan = WRONG["NaN for x < 0"]
    chosen = [_points(p, 100, random.Random(1)) for p in (spy, right, nan)]
    assert chosen[0] == chosen[1] == chosen[2]
    xs = [x for (x,) in chosen[0]]
    assert sum(x < 0 for x in xs) >= 30 and sum(abs(x) > 5 for x in xs) >= 25
    assert max(abs(x) for x in xs) > 1000 and 0 < min(abs(x) for x in xs if x) < 1e-3


def test_points_respect_the_domain():
    for name in ("log", "sqrt", "reciprocal", "pow"):
        prim = PRIMITIVES[name]
        for args in _points(prim, 100, random.Random(0)):
            assert prim.valid(*args), (name, args)
            assert math.isfinite(prim.forward(*args))


# --- what else is checked


def test_a_primitive_not_in_the_table_is_added_for_the_check_only(table):
    p = _cube("cube_ok", lambda a, out: (3.0 * a * a,))
    assert check_primitive(p, examples=20).name == "cube_ok"
    assert "cube_ok" not in PRIMITIVES
    primitive(p)
    check_primitive("cube_ok", examples=20)
    assert PRIMITIVES["cube_ok"] is p  # already there: left there
    with pytest.raises(ValueError, match="another primitive named 'cube_ok'"):
        check_primitive(_cube("cube_ok", lambda a, out: (3.0 * a * a,)))
    with pytest.raises(KeyError, match="no primitive named 'nope'"):
        check_primitive("nope")
    with pytest.raises(TypeError):
        check_primitive(3)  # type: ignore[arg-type]
    constant = Primitive(name="k", arity=1, forward=lambda a: a, derivatives=lambda a, out: (0.0,), symbol="k",
                         constant_args=(0,))
    with pytest.raises(ValueError, match="no input that is not a constant"):
        check_primitive(constant)


def test_a_forward_function_that_raises_is_caught():
    raw = Primitive(name="cube_raw", arity=1, forward=lambda a: a**3, derivatives=lambda a, out: (3 * a * a,),
                    symbol="c")
    message = _caught(raw)
    assert "cube_raw" in message and "forward function raised OverflowError" in message
    raising = Primitive(name="sine", arity=1, forward=math.sin, derivatives=lambda a, out: (COS(a),), symbol="s")
    assert "sine(inf)" in _caught(raising)
    as_int = Primitive(name="step", arity=1, forward=lambda a: 0 if a < 0 else a, derivatives=lambda a, out: (0.0,),
                       symbol="s")
    assert "returned int 0" in _caught(as_int)


def test_a_rule_that_cannot_run_on_values_is_caught():
    # math.cos on a Value refuses (it would drop the gradient): a rule must use the primitives
    sin = PRIMITIVES["sin"].forward  # total: math.sin raises at inf
    bad = Primitive(name="sine", arity=1, forward=sin, derivatives=lambda a, out: (math.cos(a),), symbol="s")
    message = _caught(bad)
    assert "its rule raised TypeError on Values" in message and "[create_graph]" in message
    good = Primitive(name="sine", arity=1, forward=sin, derivatives=lambda a, out: (COS(a),), symbol="s")
    check_primitive(good, examples=20)


def test_a_rule_with_the_wrong_number_of_entries_is_caught():
    bad = Primitive(name="twice", arity=2, forward=lambda a, b: a + b, derivatives=lambda a, b, out: (1.0,), symbol="t")
    assert "a tuple of one number per input (2)" in _caught(bad)


def test_a_rule_nonlinear_in_g_is_caught():
    # right for g = 1 (the local derivative) but not a vector-Jacobian product
    bad = Primitive(name="cube_g", arity=1, forward=lambda a: power(a, 3.0),
                    vjp=lambda g, a, out: (g * g * 3.0 * a * a,), symbol="c")
    message = _caught(bad)
    assert "cube_g" in message and ("seeded with" in message or "forward/reverse adjoint" in message)


def test_non_differentiable_primitives_must_send_nothing_back():
    assert "exactly 0.0 flows back" in str(check_primitive("stop_gradient"))
    leaky = Primitive(name="leaky_stop", arity=1, forward=lambda a: a, vjp=lambda g, a, out: (g * 1e-3,),
                      symbol="s", differentiable=False)
    message = _caught(leaky)
    assert "declared differentiable=False" in message and "leaky_stop" in message


def test_a_wrong_rule_in_random_expressions_is_shrunk_and_named(table):
    # the expression stage on its own (the points stage would catch it first)
    p = primitive(WRONG["wrong sign for x < 0"])
    with pytest.raises(GradcheckError) as info:
        _expressions(p, 100, 0, 1e-6, 1e-9)
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0] == "check_primitive(cube_sign): a random expression fails; the smallest one found:"
    source = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("  at "))]
    assert any("cube_sign(" in s for s in source) and len(source) <= 2, message  # shrunk: small
    assert "f as code:" in message
    assert "cube_sign's rule is wrong on floats and on Values" in message
    # the right rule passes the same stage
    PRIMITIVES.pop("cube_sign")
    right = primitive(_cube("cube_sign", lambda a, out: (3.0 * a * a,)))
    checked, note = _expressions(right, 40, 0, 1e-6, 1e-9)
    assert checked >= 20 and note == ""


def test_summary_reads_well():
    result = check_primitive("log", examples=30, expressions=5)
    text = str(result)
    lines = text.splitlines()
    assert lines[0] == "check_primitive(log): passed (seed 0)"
    n = result.points
    assert 20 <= n <= 30 and f"  {n} points (x > 0: {n}, |x| > 5: {result.regions['|x| > 5']})" in lines
    assert "5 random expressions" in text
    assert "x < 0" not in text  # log's domain


def test_the_forward_function_must_give_the_recorded_number(table):
    # a forward function with hidden state gives different numbers on each call
    calls = []

    def drifting(a):
        calls.append(a)
        return a + len(calls) * 1e-3

    p = Primitive(name="drift", arity=1, forward=drifting, derivatives=lambda a, out: (1.0,), symbol="d")
    first = _caught(p).splitlines()[0]
    assert first.startswith("check_primitive(drift): mg.apply on numbers gives ") and first.endswith("[forward]")
