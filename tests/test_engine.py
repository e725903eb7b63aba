"""The engine: Value, the primitive table, composites, backward and bad input."""

from __future__ import annotations

import gc
import math
import sys
import threading
from fractions import Fraction

import pytest

import microgrannd as mg
from microgrannd import PRIMITIVES, DomainError, Value, ZeroDivisionDomainError
from microgrannd.ops import Primitive


def interior(root: Value) -> list[Value]:
    """Non-leaf nodes of root's graph, inputs first."""
    return [v for v in mg.toposort(root) if v.parents]


# --------------------------------------------------------------------- Value


def test_value_stores_floats_and_starts_clean() -> None:
    x = Value(2, label="x")
    assert type(x.data) is float and x.data == 2.0
    assert x.grad == 0.0 and type(x.grad) is float
    assert x.op == "" and x.parents == () and x.label == "x"
    assert Value(Fraction(1, 4)).data == 0.25
    with pytest.raises(TypeError, match="bool"):
        Value(True)


@pytest.mark.parametrize("bad", ["1.0", 1j, None, [1.0], (1.0,), {1: 2}])
def test_value_rejects_non_real_data_naming_the_type(bad: object) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        Value(bad)  # type: ignore[arg-type]


def test_label_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="label"):
        Value(1.0, 3)  # type: ignore[arg-type]


def test_repr_shows_data_grad_op_and_label() -> None:
    x = Value(2.0, "x")
    y = x * 3
    y.label = "y"
    assert repr(x) == "Value(data=2.0, grad=0.0, label='x')"
    assert repr(y) == "Value(data=6.0, grad=0.0, op='mul', label='y')"
    assert "constant" in repr(y.parents[1])


def test_equality_and_hashing_are_by_identity() -> None:
    a, b = Value(1.0), Value(1.0)
    assert a != b and a == a
    assert len({a, b, a}) == 2
    assert hash(a) != hash(b)


def test_comparisons_and_float_read_the_data() -> None:
    a, b = Value(1.0), Value(2.0)
    assert a < b and b > a and a <= 1 and b >= 2.0 and b.data == 2.0
    assert float(Value(2.0, requires_grad=False)) == 2.0  # a constant has no gradient to lose
    assert bool(Value(0.0)) is False and bool(a) is True


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (lambda x: x + 2, 5.0),
        (lambda x: 2 + x, 5.0),
        (lambda x: x - 2, 1.0),
        (lambda x: 2 - x, -1.0),
        (lambda x: x * 2, 6.0),
        (lambda x: 2 * x, 6.0),
        (lambda x: x / 2, 1.5),
        (lambda x: 6 / x, 2.0),
        (lambda x: x**2, 9.0),
        (lambda x: 2**x, 8.0),
        (lambda x: x**x, 27.0),
        (lambda x: -x, -3.0),
    ],
)
def test_operators_accept_numbers_on_either_side(expr, expected: float) -> None:  # type: ignore[no-untyped-def]
    out = expr(Value(3.0))
    assert isinstance(out, Value)
    assert out.data == pytest.approx(expected, rel=1e-15)


def test_operators_with_unsupported_types_raise_type_error() -> None:
    x = Value(1.0)
    for bad in ("a", None, [1], 1j):
        with pytest.raises(TypeError):
            x + bad  # type: ignore[operator]
        with pytest.raises(TypeError):
            bad * x  # type: ignore[operator]


# ------------------------------------------------------- composites' structure


def test_x_times_x_has_two_parent_slots_and_gradient_2x() -> None:
    x = Value(3.0)
    y = x * x
    assert y.parents == (x, x)
    y.backward()
    assert x.grad == 6.0


def test_negation_is_mul_by_minus_one() -> None:
    x = Value(3.0)
    y = -x
    assert y.op == "mul" and y.parents[0] is x and y.parents[1].data == -1.0
    assert not y.parents[1].requires_grad


def test_subtraction_is_addition_of_the_negation() -> None:
    a, b = Value(5.0), Value(3.0)
    y = a - b
    assert [v.op for v in interior(y)] == ["mul", "add"]
    neg = y.parents[1]
    assert y.parents[0] is a and neg.op == "mul" and neg.parents[0] is b
    assert y.scope is not None and y.scope.name == "sub"
    y.backward()
    assert (a.grad, b.grad) == (1.0, -1.0)


def test_division_is_multiplication_by_the_reciprocal() -> None:
    a, b = Value(6.0), Value(4.0)
    y = a / b
    assert [v.op for v in interior(y)] == ["reciprocal", "mul"]
    assert y.parents[0] is a and y.parents[1].op == "reciprocal"
    y.backward()
    assert a.grad == 0.25 and b.grad == pytest.approx(-6.0 / 16.0, rel=1e-15)


def test_number_operands_fold_into_one_node() -> None:
    x = Value(3.0)
    assert [v.op for v in interior(x - 1)] == ["add"]
    assert (x - 1).parents[1].data == -1.0
    assert [v.op for v in interior(x / 4)] == ["mul"]
    assert (x / 4).parents[1].data == 0.25


def test_pow_with_number_is_a_primitive_and_with_value_a_composite() -> None:
    x = Value(2.0)
    y = x**3
    assert y.op == "pow" and y.parents[0] is x and y.parents[1].data == 3.0
    z = x ** Value(3.0)
    assert [v.op for v in interior(z)] == ["log", "mul", "exp"]
    assert z.scope is not None and z.scope.name == "power"
    assert z.data == pytest.approx(8.0, rel=1e-15)


def test_sigmoid_is_exactly_four_primitive_nodes() -> None:
    x = Value(0.7)
    y = x.sigmoid()
    nodes = interior(y)
    assert [v.op for v in nodes] == ["mul", "exp", "add", "reciprocal"]
    mul, exp, add, rec = nodes
    assert mul.parents[0] is x and mul.parents[1].data == -1.0 and not mul.parents[1].requires_grad
    assert exp.parents == (mul,)
    assert exp in add.parents and any(p.data == 1.0 and not p.requires_grad for p in add.parents)
    assert rec.parents == (add,) and rec is y
    scopes = {v.scope for v in nodes}
    assert len(scopes) == 1
    (s,) = scopes
    assert s is not None and s.name == "sigmoid" and s.parent is None


def test_module_functions_and_methods_agree() -> None:
    for name in ("exp", "log", "reciprocal", "relu", "tanh", "softplus", "sigmoid", "leaky_relu"):
        x = Value(0.8)
        by_method = getattr(x, name)()
        by_function = getattr(mg, name)(Value(0.8))
        on_float = getattr(mg, name)(0.8)
        assert type(on_float) is float
        assert by_method.data == by_function.data == on_float


def test_fused_and_decomposed_sigmoid_agree_in_value_and_gradient() -> None:
    for x0 in [-30.0, -7.2, -1.0, -1e-3, 0.0, 0.5, 3.0, 5.6, 30.0]:
        a, b = Value(x0), Value(x0)
        ya, yb = mg.sigmoid(a), mg.sigmoid_fused(b)
        ya.backward(3.0)
        yb.backward(3.0)
        assert yb.op == "sigmoid_fused" and len(interior(yb)) == 1
        assert ya.data == pytest.approx(yb.data, rel=1e-15, abs=1e-300)
        e = math.exp(-abs(x0))
        exact = 3.0 * e / (1.0 + e) ** 2
        assert a.grad == pytest.approx(exact, rel=1e-12)
        # g*y*(1-y) cancels digits where y is near 1; the four-node graph does not
        assert b.grad == pytest.approx(exact, rel=1e-12 if x0 < 10 else 1e-2)


@pytest.mark.parametrize("x0", [-1000.0, 1000.0, -800.0, 800.0])
def test_sigmoid_saturates_without_nan(x0: float) -> None:
    x = Value(x0)
    y = mg.sigmoid(x)
    y.backward()
    assert y.data == (0.0 if x0 < 0 else 1.0)
    assert x.grad == 0.0
    assert mg.grad(mg.sigmoid)(x0) == 0.0


def test_tanh_is_accurate_on_the_whole_range() -> None:
    for i in range(-1000, 1001, 7):
        x0 = i + 0.25
        x = Value(x0)
        y = x.tanh()
        y.backward()
        assert y.data == math.tanh(x0)
        assert x.grad == pytest.approx(1 - math.tanh(x0) ** 2, rel=1e-12, abs=1e-300)
    assert mg.tanh(1e-10) == 1e-10


def test_leaky_relu_slope() -> None:
    for x0, slope in [(2.0, 0.1), (-2.0, 0.1), (-3.0, 0.01)]:
        x = Value(x0)
        y = x.leaky_relu(slope)
        y.backward()
        assert y.data == pytest.approx(x0 if x0 > 0 else slope * x0, rel=1e-15)
        assert x.grad == pytest.approx(1.0 if x0 > 0 else slope, rel=1e-15)
        assert y.scope is not None and y.scope.name == "leaky_relu"


def test_softplus_is_stable_and_its_derivative_is_sigmoid() -> None:
    assert mg.softplus(1000.0) == 1000.0
    assert mg.softplus(-800.0) == 0.0
    assert mg.softplus(-30.0) == pytest.approx(math.exp(-30.0), rel=1e-12)
    for x0 in (-30.0, -1.0, 0.0, 2.0, 40.0):
        assert mg.grad(mg.softplus)(x0) == pytest.approx(mg.sigmoid_fused(x0), rel=1e-12)


# ----------------------------------------------------------------- scopes


def test_composites_record_nested_scopes_with_distinct_call_ids() -> None:
    @mg.composite
    def swish(x: Value) -> Value:
        return x * mg.sigmoid(x)

    x = Value(1.0)
    y1, y2 = swish(x), swish(x)
    assert y1.scope is not None and y1.scope.name == "swish"
    assert y2.scope is not None and y1.scope.id != y2.scope.id
    inner = next(v for v in interior(y1) if v.op == "exp").scope
    assert inner is not None and inner.name == "sigmoid" and inner.parent is y1.scope
    assert [s.name for s in inner.path()] == ["swish", "sigmoid"]


def test_named_composite_decorator_and_scope_context() -> None:
    @mg.composite("cube")
    def f(x: Value) -> Value:
        return x * x * x

    assert f(Value(2.0)).scope.name == "cube"  # type: ignore[union-attr]
    with mg.scope("block") as s:
        y = Value(1.0) + 1
    assert y.scope is s and s.name == "block"
    assert (Value(1.0) + 1).scope is None


# ---------------------------------------------------------------- backward


def test_backward_seed_defaults_to_one_and_can_be_set() -> None:
    x = Value(2.0)
    y = x * x * 5
    y.backward()
    assert y.grad == 1.0 and x.grad == 20.0
    x2 = Value(2.0)
    y2 = x2 * x2 * 5
    y2.backward(3.0)
    assert y2.grad == 3.0 and x2.grad == 60.0


def test_gradients_accumulate_over_reuse() -> None:
    x = Value(3.0)
    a = x + x
    b = a + a
    b.backward()
    assert x.grad == 4.0 and a.grad == 2.0
    x = Value(3.0)
    y = x * x * x + x
    y.backward()
    assert x.grad == 28.0


def test_backward_twice_recomputes_interior_and_accumulates_leaves() -> None:
    x = Value(2.0)
    h = x * x
    y = h * 3
    y.backward()
    assert (x.grad, h.grad) == (12.0, 3.0)
    y.backward()
    assert (x.grad, h.grad) == (24.0, 3.0)
    y.zero_grad()
    assert all(v.grad == 0.0 for v in mg.toposort(y))
    y.backward()
    assert x.grad == 12.0


def test_a_chain_of_a_million_nodes_backpropagates() -> None:
    x = Value(1.0)
    y = x
    for _ in range(1_000_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0 and y.data == 1_000_001.0
    assert len(mg.toposort(y)) == 2_000_001


def test_a_deep_chain_of_unary_nodes_has_the_chain_rule_product() -> None:
    x = Value(0.5)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**10_000, rel=1e-9)


def test_graphs_hold_no_reference_cycles() -> None:
    gc.collect()
    gc.disable()
    try:
        x = Value(0.3)
        y = mg.sigmoid(x * x + 2) / (x + 1)
        y.backward(create_graph=False)
        del y
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_gradients_function_touches_no_fields() -> None:
    x = Value(2.0)
    y = x * x
    grads = mg.gradients(y)
    assert grads[x] == 4.0 and x.grad == 0.0 and y.grad == 0.0


def test_create_graph_builds_gradients_as_values() -> None:
    x = Value(1.5)
    y = x**3
    y.backward(create_graph=True)
    assert isinstance(x.grad, Value) and x.grad.data == pytest.approx(3 * 1.5**2)
    gx = x.grad
    x.grad = 0.0
    gx.backward()
    assert x.grad == pytest.approx(6 * 1.5)


# --------------------------------------------------------- no_grad, detach


def test_no_grad_records_nothing() -> None:
    x = Value(2.0)
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = x * x + 1
    assert mg.is_grad_enabled()
    assert y.parents == () and y.op == "" and not y.requires_grad and y.data == 5.0


def test_no_grad_is_per_thread() -> None:
    seen: list[bool] = []
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        entered.wait()
        seen.append(mg.is_grad_enabled())
        seen.append(bool((Value(1.0) * 2).parents))
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with mg.no_grad():
        entered.set()
        release.wait(5)
    t.join()
    assert seen == [True, True]


def test_detach_cuts_the_graph() -> None:
    x = Value(2.0)
    y = (x * 3).detach()
    z = y * x
    z.backward()
    assert y.parents == () and not y.requires_grad
    assert x.grad == 6.0


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fn", "error", "words"),
    [
        (lambda: Value(0.0).log(), ZeroDivisionDomainError, ["log", "0.0"]),
        (lambda: Value(-1.5).log(), DomainError, ["log", "-1.5"]),
        (lambda: Value(0.0).reciprocal(), ZeroDivisionDomainError, ["reciprocal", "0.0"]),
        (lambda: Value(2.0) / Value(0.0), ZeroDivisionDomainError, ["reciprocal", "0.0"]),
        (lambda: Value(2.0) / 0, ZeroDivisionDomainError, ["reciprocal", "0.0"]),
        (lambda: Value(-8.0) ** (1 / 3), DomainError, ["pow", "-8.0"]),
        (lambda: Value(0.0) ** -1, ZeroDivisionDomainError, ["pow", "0.0"]),
        (lambda: Value(-2.0) ** Value(2.0), DomainError, ["pow", "-2.0"]),
        (lambda: mg.log(0.0), ZeroDivisionDomainError, ["log", "0.0"]),
        (lambda: mg.reciprocal(0), ZeroDivisionDomainError, ["reciprocal"]),
    ],
)
def test_domain_errors_name_the_operation_and_the_value(fn, error: type, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as info:
        fn()
    assert isinstance(info.value, ValueError)
    for w in words:
        assert w in str(info.value)


def test_pole_errors_are_also_zero_division_errors() -> None:
    with pytest.raises(ZeroDivisionError):
        Value(0.0).reciprocal()
    with pytest.raises(ValueError):
        Value(0.0).reciprocal()


def test_overflow_saturates_to_inf() -> None:
    assert Value(1000.0).exp().data == math.inf
    assert mg.exp(1000.0) == math.inf
    assert (Value(1e200) ** 2).data == math.inf
    assert (Value(-1e200) ** 3).data == -math.inf
    assert (Value(1e200) * 1e200).data == math.inf


def test_valid_edge_points_of_pow() -> None:
    assert (Value(-2.0) ** 3).data == -8.0
    assert (Value(0.0) ** 0.5).data == 0.0
    assert (Value(0.0) ** 0).data == 1.0
    x = Value(0.0)
    (x**0).backward()
    assert x.grad == 0.0


# ---------------------------------------------------------- the table


def test_every_primitive_declares_everything() -> None:
    required = {"add", "mul", "exp", "reciprocal", "log", "pow", "relu"}
    assert required <= set(PRIMITIVES)
    for name, p in PRIMITIVES.items():
        assert isinstance(p, Primitive) and p.name == name
        assert (p.arity >= 1 or p.arity == -1) and p.symbol and p.domain  # -1: any number (gather)
        assert callable(p.forward) and callable(p.derivatives)


def test_a_new_primitive_needs_one_declaration() -> None:
    from microgrannd.ops import primitive

    cube = primitive(Primitive(name="cube", arity=1,
        forward=lambda a: a * a * a,
        derivatives=lambda a, out: (3.0 * a * a,), symbol="x³"))
    try:
        x = Value(2.0)
        y = mg.apply(cube, x) * 2
        y.backward()
        assert y.data == 16.0 and x.grad == 24.0
        assert mg.apply("cube", 3.0) == 27.0
        assert mg.grad(mg.grad(lambda v: mg.apply(cube, v)))(2.0) == 12.0
        with pytest.raises(ValueError, match="already"):
            primitive(cube)
    finally:
        del PRIMITIVES["cube"]


def test_apply_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="takes 2"):
        mg.apply("add", 1.0)
    with pytest.raises(TypeError, match="must be a number"):
        mg.apply("pow", Value(2.0), Value(2.0))
    with pytest.raises(TypeError, match="str"):
        mg.apply("exp", "x")


def test_deeply_nested_scopes_hash_without_recursion() -> None:
    s = None
    for i in range(5 * sys.getrecursionlimit()):
        s = mg.Scope("level", i, s)
    assert s is not None
    assert len({s, s.parent}) == 2 and s == s and s != mg.Scope("level", s.id, s.parent)
    assert len(s.path()) == 5 * sys.getrecursionlimit()


def test_gc_paused_is_an_explicit_opt_in_that_restores_the_state() -> None:
    assert gc.isenabled()
    x = Value(2.0)
    with mg.gc_paused():
        assert not gc.isenabled()
        y = x * x + 1
        y.backward()
    assert gc.isenabled() and x.grad == 4.0
    gc.disable()
    try:
        with mg.gc_paused():
            pass
        assert not gc.isenabled()  # it was off before, so it stays off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), mg.gc_paused():
        raise RuntimeError
    assert gc.isenabled()


# ---------------------------------------------------------- PyTorch habits


def test_item_reads_the_number() -> None:
    x = Value(2.5)
    assert (x * 2).item() == 5.0 and type(x.item()) is float


def test_a_grad_set_to_none_counts_as_zero() -> None:
    x = Value(3.0)
    y = x * x
    x.grad = None  # type: ignore[assignment]
    y.backward()
    assert x.grad == 6.0
    x.grad = None  # type: ignore[assignment]
    x.backward()  # a leaf seeds itself
    assert x.grad == 1.0


def test_backward_of_a_constant_is_refused() -> None:
    x = Value(1.0)
    with mg.no_grad():
        y = x * 3
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Value(1.0, requires_grad=False).backward()


def test_gradients_with_a_list_of_inputs_returns_their_gradients() -> None:
    x, w, unused = Value(2.0), Value(-1.5), Value(7.0)
    y = x * w + x
    assert mg.gradients(y, [x, w, unused]) == [w.data + 1.0, x.data, 0.0]
    assert mg.gradients(y, (w,)) == [2.0]
    with pytest.raises(TypeError, match="seed"):
        mg.gradients(y, "x")  # type: ignore[arg-type]


def test_gradients_from_several_threads_on_one_graph_agree() -> None:
    """The walks mark nodes with numbers of their own, one walk at a time: threads never mix marks."""
    import sys
    import threading

    x = Value(0.3)
    h = x
    for i in range(300):
        h = (h * 1.001 + x * 0.01).tanh() if i % 3 else h * h * 0.5 + x
    want = mg.gradients(h)[x]
    results: list[float] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        def work() -> None:
            for _ in range(30):
                results.append(mg.gradients(h)[x])

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(results) == 120 and set(results) == {want}
