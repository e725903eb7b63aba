"""Regression tests for the engine's trust guarantees.

Each test pins one promise of the core: an interrupted backward leaves the
graph usable, nothing silently drops a gradient, NaN and saturation stay honest on
every path (eager, create_graph, nested grad, compiled), the compiler refuses branches
it cannot see and touches nothing it does not own, and inputs follow one policy.
Expected numbers come from closed forms computed with plain floats, never from the engine.
"""

from __future__ import annotations

import faulthandler
import gc
import inspect
import math
import random
import re
import signal
import sys
import threading
import time

import pytest

import microgrannd as mg
import microgrannd.nn  # makes mg.nn available
from microgrannd import Value


def _num(g):
    """The number of a gradient that may be a Value (after create_graph) or a float."""
    return g.data if isinstance(g, Value) else g


def _sigmoid(z: float) -> float:
    """Logistic sigmoid in plain floats, without overflow."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _close(a: float, b: float, tol: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# --- 1. interrupted backward
def _chain(n: int):
    """A chain of n steps mixing mul/add/relu/tanh/exp/log, with x feeding every fourth step."""
    x = Value(0.5)
    y = x
    for i in range(n):
        k = i % 4
        if k == 0:
            y = y * 1.0001 + x * 0.0001
        elif k == 1:
            y = mg.relu(y) + 0.0001
        elif k == 2:
            y = mg.tanh(y) * 1.1
        else:
            y = mg.exp(mg.log(y) * 0.999)
    return x, y


def _backward_with_alarm(y, delay: float) -> bool:
    """Run y.backward() with SIGALRM due after ``delay`` s; True if a KeyboardInterrupt cut it short."""
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        y.backward()
    except KeyboardInterrupt:
        return True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return False


@pytest.mark.skipif(not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread(),
                    reason="needs POSIX interval timers on the main thread")
def test_interrupted_backward_leaves_the_graph_usable():
    """Ctrl-C at any moment of backward: every grad stays a float, leaf grads are as before the call."""
    x, y = _chain(20_000)
    nodes = mg.toposort(y)
    leaves = [v for v in nodes if not v.parents and v.requires_grad]  # a constant's grad is scratch
    expected = mg.gradients(y)[x]
    assert expected != 0.0 and math.isfinite(expected)
    durations = []
    for _ in range(3):  # clean runs, to size the delays and the number of trials (about 10 s in all)
        t0 = time.perf_counter()
        y.backward()
        durations.append(time.perf_counter() - t0)
    duration = min(durations)
    trials = max(120, min(300, int(10.0 / (2.5 * duration + 0.01))))

    def alarm(signum, frame):
        # Interrupt only inside backward, not in the helper around it (before the call or after it returned).
        if frame is None or frame.f_code is not _backward_with_alarm.__code__:
            raise KeyboardInterrupt

    rng = random.Random(20240601)
    previous = signal.signal(signal.SIGALRM, alarm)
    faulthandler.dump_traceback_later(300, exit=True)  # a deadlocked backward must not hang the suite
    interrupted = 0
    collecting = gc.isenabled()
    gc.disable()  # the collector's callbacks (hypothesis has one) would swallow some interrupts
    try:
        for _ in range(trials):
            x.grad = 0.25
            before = [v.grad for v in leaves]
            cut = _backward_with_alarm(y, rng.uniform(1e-5, 1.2 * duration))
            assert all(type(v.grad) is float for v in nodes)
            if cut:
                interrupted += 1
                assert x.grad == 0.25
                changed = [v for v, g in zip(leaves, before, strict=True) if v.grad != g]
                assert not changed, f"{len(changed)} leaf gradients changed, e.g. {changed[:2]}"
            else:
                assert x.grad == pytest.approx(0.25 + expected, rel=1e-12)
            x.grad = 0.0
            y.backward()
            assert x.grad == expected
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
        if collecting:
            gc.enable()
    assert interrupted >= trials // 4, f"only {interrupted} of {trials} trials were interrupted"


# --- 2. float() refuses to drop a gradient
def test_float_refuses_to_drop_a_gradient():
    """float(v) and the math functions refuse a recording Value; constants, no_grad and .data still read."""
    v = Value(0.5)
    for convert in (float, math.exp, math.tanh):
        with pytest.raises(TypeError) as e:
            convert(v)
        assert "mg.exp" in str(e.value) and ".data" in str(e.value)
    assert v.data == 0.5
    assert float(Value(2.0, requires_grad=False)) == 2.0
    with mg.no_grad():
        assert float(v) == 0.5
    with pytest.raises(TypeError):  # d/dx x*exp(x) at 1 is 2e; math.exp would silently give e
        mg.grad(lambda x: x * math.exp(x))(1.0)
    assert mg.grad(lambda x: x * mg.exp(x))(1.0) == pytest.approx(2 * math.e, rel=1e-15)


# --- 3. NaN through relu
def test_relu_propagates_nan():
    """relu(NaN) is NaN for floats, Values and inside a network."""
    assert math.isnan(mg.relu(float("nan")))
    assert math.isnan(mg.relu(Value(float("nan"))).data)
    net = mg.nn.MLP(2, [4, 1], rng=0)
    assert math.isnan(net([float("nan"), 1.0]).data)


# --- 4. masks, not products
@pytest.mark.parametrize("x0", [-1.0, 0.0])
@pytest.mark.parametrize("create_graph", [False, True])
def test_relu_mask_blocks_an_infinite_upstream_gradient(x0, create_graph):
    """sqrt(relu(x)) for x <= 0: relu's closed mask sends back exactly 0.0, not 0 * inf = NaN."""
    x = Value(x0)
    (mg.relu(x) ** 0.5).backward(create_graph=create_graph)
    assert _num(x.grad) == 0.0
    assert mg.grad(lambda v: mg.relu(v) ** 0.5)(x0) == 0.0


# --- 5. saturation on every path
def test_sigmoid_saturates_on_every_path():
    """At x = -800 sigmoid's derivatives (first, second, third) are exactly 0.0, never NaN; so is tanh(exp(x))'."""
    x = Value(-800.0)
    mg.sigmoid(x).backward(create_graph=True)
    assert _num(x.grad) == 0.0
    assert mg.grad(mg.sigmoid)(-800.0) == 0.0
    assert mg.grad(mg.grad(mg.sigmoid))(-800.0) == 0.0
    assert mg.grad(mg.grad(mg.grad(mg.sigmoid)))(-800.0) == 0.0
    x = Value(800.0)  # d/dx tanh(exp(x)) = (1 - tanh^2) e^x is 0 * inf in floats: the answer is 0.0
    mg.tanh(mg.exp(x)).backward(create_graph=True)
    assert _num(x.grad) == 0.0


@pytest.mark.parametrize("method", ["auto", "tape"])
def test_compiled_sigmoid_saturates(method):
    """The compiled sigmoid at -800 gives value 0.0 and gradient 0.0."""
    c = mg.compile(mg.sigmoid, 2.0) if method == "auto" else mg.compile(mg.sigmoid, 2.0, method=method)
    value, (g,) = c(-800.0)
    assert value == 0.0 and g == 0.0


# --- 6. underflow
def test_log_sigmoid_gradient_does_not_underflow():
    """d/dx log(sigmoid(x)) = sigmoid(-x), to 1e-12 relative over [-700, 700]."""
    d1 = mg.grad(lambda x: mg.log(mg.sigmoid(x)))
    for x in [*range(-700, 701, 7), -400, -363, -500]:
        exact = _sigmoid(-float(x))
        assert abs(d1(float(x)) - exact) <= 1e-12 * exact, x


def test_log_sigmoid_second_derivative():
    """d2/dx2 log(sigmoid(x)) = -sigmoid(x) sigmoid(-x): never NaN on [-700, 700], accurate on [-10, 10]."""
    d2 = mg.grad(mg.grad(lambda x: mg.log(mg.sigmoid(x))))
    for x in range(-700, 701, 7):
        d = d2(float(x))
        assert not math.isnan(d) and abs(d) <= 0.25 + 1e-12, x
    for i in range(-20, 21):
        x = i / 2
        assert math.isclose(d2(x), -_sigmoid(x) * _sigmoid(-x), rel_tol=1e-9, abs_tol=1e-12), x


# --- 7. x ** 0.5 at 0
def test_square_root_power_at_zero():
    """d/dx x**0.5 at 0 is +inf on every path; the second derivative is infinite, not NaN, and does not raise."""
    x = Value(0.0)
    (x**0.5).backward()
    assert x.grad == math.inf
    x = Value(0.0)
    (x**0.5).backward(create_graph=True)
    assert _num(x.grad) == math.inf
    assert mg.grad(lambda v: v**0.5)(0.0) == math.inf
    assert mg.grad(mg.grad(lambda v: v**0.5))(0.0) in (math.inf, -math.inf)


# --- 8. the compiler refuses branches it cannot see
def branch_on_backward_grad(x):
    y = x * x
    y.backward()
    return x * (2.0 if x.grad > 5 else 7.0)


def branch_on_gradients(x):
    g = mg.gradients(x * x)[x]
    return x * (2.0 if g > 5 else 7.0)


BRANCH_ON_TEXT = {
    "repr": lambda x: x * (2.0 if "3" in repr(x) else 7.0),
    "str": lambda x: x * (2.0 if "3" in str(x) else 7.0),
    "format": lambda x: x * (2.0 if "3" in f"{x}" else 7.0),
}


def _assert_names_line_of(err: Exception, fn) -> None:
    """The message names this file at a line of ``fn``'s source."""
    lines, start = inspect.getsourcelines(fn)
    named = [int(n) for n in re.findall(r"test_trust\.py:(\d+)", str(err))]
    assert any(start <= n < start + len(lines) for n in named), str(err)


@pytest.mark.parametrize("fn", [branch_on_backward_grad, branch_on_gradients, *BRANCH_ON_TEXT.values()],
                         ids=["backward", "gradients", *BRANCH_ON_TEXT])
def test_compile_refuses_hidden_branches(fn):
    """A decision taken on a traced number through .grad, gradients or text raises TraceError naming the line."""
    with pytest.raises(mg.TraceError) as e:
        mg.compile(fn, 3.0)
    _assert_names_line_of(e.value, fn)


def test_compile_refuses_a_branch_inside_nested_grad():
    """A branch inside a function given to mg.grad is caught too; a branch-free one compiles to 3x^2, 6x."""
    fn = lambda x: mg.grad(lambda y: y * y if y > 0 else -y)(x)
    with pytest.raises(mg.TraceError) as e:
        mg.compile(fn, 1.0)
    _assert_names_line_of(e.value, fn)
    c = mg.compile(lambda x: mg.grad(lambda y: y * y * y)(x), 2.0)
    assert c(2.0)[0] == 12.0
    assert c(3.0) == (27.0, (18.0,))


# --- 9. compile leaves captured objects alone
def test_compile_leaves_captured_parameters_alone():
    """While a closure's parameter is traced, the object others hold stays a plain Value, in every thread.

    (Inside the traced function the name ``w`` may refer to a traced stand-in; the object itself never changes.)
    """
    w = Value(1.5)
    held = [w]  # the same object, reached without the closure's cell
    n = 3000
    seen_inside: list[type] = []
    seen_outside: set[type] = set()
    errors: list[BaseException] = []
    asked, answered, stop = threading.Event(), threading.Event(), threading.Event()

    def reader():  # another thread using w throughout the compile, and on request mid-trace
        while not stop.is_set():
            was_asked = asked.is_set()
            try:
                seen_outside.add(type(w))
                assert w.data + 1.0 == 2.5 and w * 2.0 > 0 and w > 0
            except BaseException as e:
                errors.append(e)
            if was_asked:
                answered.set()

    def f(x):
        total = w * x
        for k in range(n - 1):
            if k % 500 == 0:
                seen_inside.append(type(held[0]))
            if k == n // 2:  # mid-trace: wait until the other thread has looked at w
                asked.set()
                answered.wait(10)
                asked.clear()
                answered.clear()
            total = total + w * x
        return total

    thread = threading.Thread(target=reader, daemon=True)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    thread.start()
    try:
        c = mg.compile(f, 0.5)
    finally:
        stop.set()
        thread.join(10)
        sys.setswitchinterval(interval)
    assert seen_inside and set(seen_inside) == {Value}
    assert seen_outside == {Value}
    assert not errors, errors[:3]
    w.grad = 0.0
    assert c.backward(0.5) == n * 1.5 * 0.5
    assert w.grad == n * 0.5
    assert c(0.25) == (n * 1.5 * 0.25, (n * 1.5,))


# --- 10. optimizers after create_graph
def test_optimizers_step_on_numbers_after_create_graph():
    """After backward(create_graph=True) a step still writes plain floats: SGD 2 - 0.1*4, Adam 2 - lr*4/(4+eps)."""
    p = Value(2.0)
    (p * p).backward(create_graph=True)
    mg.nn.SGD([p], lr=0.1).step()
    assert type(p.data) is float and p.data == 2.0 - 0.1 * 4.0
    q = Value(2.0)
    (q * q).backward(create_graph=True)
    mg.nn.Adam([q], lr=0.01).step()
    assert type(q.data) is float and math.isfinite(q.data)
    assert q.data == pytest.approx(2.0 - 0.01 * 4.0 / (4.0 + 1e-8), rel=1e-12)


# --- 11. create_graph and reference cycles
def _values_left_in_cycles(build) -> int:
    """Run ``build`` with the collector paused; count the Values only a cycle keeps alive afterwards."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        build()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return sum(isinstance(o, Value) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def test_higher_order_gradients_leave_no_reference_cycles():
    """backward(create_graph=True) documents its cycle and points to mg.grad; mg.grad and gradients make none."""
    doc = Value.backward.__doc__ or ""
    assert "cycle" in doc and "mg.grad" in doc

    def handmade_cycle():  # checks the detector: a gradient that refers back to its leaf
        a = Value(1.0)
        a.grad = a * 2.0

    def nested_grad():
        f = lambda v: mg.tanh(v) * v * mg.exp(v)
        assert math.isfinite(mg.grad(mg.grad(f))(0.3))
        assert math.isfinite(_num(mg.grad(mg.grad(f))(Value(0.3))))

    def functional_gradients():
        x = Value(0.3)
        y = mg.tanh(x) * x * mg.exp(x)
        g = mg.gradients(y, create_graph=True)[x]
        h = mg.gradients(g, create_graph=True)[x]
        assert math.isfinite(_num(h))

    assert _values_left_in_cycles(handmade_cycle) > 0
    assert _values_left_in_cycles(nested_grad) == 0
    assert _values_left_in_cycles(functional_gradients) == 0


# --- 12. the library's own functions compile
def _weighted_softmax(a, b, c):
    return sum((w * s for w, s in zip((1.0, 2.0, 3.0), mg.nn.softmax([a, b, c]), strict=True)), 0.0)


LIBRARY_CASES = [
    ("cross_entropy", lambda a, b, c: mg.nn.cross_entropy([a, b, c], 1), (0.1, 0.2, 0.3)),
    ("logsumexp", lambda a, b, c: mg.nn.logsumexp([a, b, c]), (0.1, 0.2, 0.3)),
    ("softmax", _weighted_softmax, (0.1, 0.2, 0.3)),
    ("binary_cross_entropy", lambda p: mg.nn.binary_cross_entropy(p, 1.0), (0.3,)),
]
OTHER_INPUTS = {3: [(2.0, -1.0, 0.5), (-3.0, 4.0, 1.0), (0.3, 0.2, 0.1)], 1: [(0.8,), (0.05,), (0.999,)]}


@pytest.mark.parametrize(("name", "fn", "example"), LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_library_functions_compile(name, fn, example):
    """Compiled at one input, each loss gives the eager value and gradients at others (the max shift included)."""
    c = mg.compile(fn, *example)
    for args in OTHER_INPUTS[len(example)]:
        value, grads = c(*args)
        eager_value, eager_grads = mg.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)
        assert _close(value, eager_value), (name, args)
        assert len(grads) == len(eager_grads)
        assert all(_close(g, e) for g, e in zip(grads, eager_grads, strict=True)), (name, args, grads, eager_grads)


# --- 13. one input policy
@pytest.mark.parametrize("make", [lambda: Value(10**400), lambda: Value(1.0) + 10**400], ids=["Value", "add"])
def test_an_int_too_large_for_a_float_is_a_value_error(make):
    """An int beyond the float range is refused as a ValueError saying so, not a bare OverflowError."""
    with pytest.raises(ValueError) as e:
        make()
    assert not isinstance(e.value, OverflowError)
    assert "too large" in str(e.value)


def test_non_numbers_are_type_errors():
    """A str is a TypeError naming the function and the type; bools (Python's or numpy's) are not numbers."""
    with pytest.raises(TypeError) as e:
        mg.sigmoid("1.0")
    assert "sigmoid" in str(e.value) and "str" in str(e.value)
    with pytest.raises(TypeError):
        Value(True)
    np = pytest.importorskip("numpy")
    with pytest.raises(TypeError):
        Value(np.bool_(True))


def test_abs_compiles_as_a_primitive():
    """abs(x) under compile is recorded, not branched on: 2|x| has gradient -2 at -3 and 2 at 5."""
    c = mg.compile(lambda x: abs(x) * 2.0, -3.0)
    assert c(-3.0) == (6.0, (-2.0,))
    assert c(5.0) == (10.0, (2.0,))


@pytest.mark.parametrize("fn", [lambda x: x * round(x), lambda x: x * int(x)], ids=["round", "int"])
def test_round_and_int_are_refused_while_tracing(fn):
    """round() / int() of a traced Value raise TraceError, without leaking the internal class name."""
    with pytest.raises(mg.TraceError) as e:
        mg.compile(fn, 2.0)
    assert "_Traced" not in str(e.value)


# --- new primitives: sin, cos, sqrt, abs, stop_gradient

# name: (float function, first derivative, second derivative, points, example for compile)
PRIMITIVE_FORMS = {
    "sin": (math.sin, math.cos, lambda x: -math.sin(x), [-2.0, -0.3, 0.0, 0.7, 3.0], 0.5),
    "cos": (math.cos, lambda x: -math.sin(x), lambda x: -math.cos(x), [-2.0, -0.3, 0.0, 0.7, 3.0], 0.5),
    "sqrt": (math.sqrt, lambda x: 0.5 / math.sqrt(x), lambda x: -0.25 * x**-1.5, [0.25, 1.0, 2.0, 9.0], 4.0),
    "abs": (math.fabs, lambda x: math.copysign(1.0, x), lambda x: 0.0, [-2.5, -0.5, 0.5, 3.0], 1.0),
}


@pytest.mark.parametrize("name", sorted(PRIMITIVE_FORMS))
def test_new_primitive_values_and_derivatives(name):
    """mg.<name>: value as math's, first and second derivatives as the closed forms."""
    fn = getattr(mg, name)
    value, d1, d2, points, _ = PRIMITIVE_FORMS[name]
    for x in points:
        assert fn(x) == value(x)
        assert fn(Value(x)).data == value(x)
        assert _close(mg.grad(fn)(x), d1(x), 1e-14), x
        assert _close(mg.grad(mg.grad(fn))(x), d2(x), 1e-13), x


@pytest.mark.parametrize("method", ["codegen", "tape"])
@pytest.mark.parametrize("name", sorted(PRIMITIVE_FORMS))
def test_new_primitives_compile(name, method):
    """Compiled mg.<name> and its compiled derivative match the closed forms away from the example input."""
    fn = getattr(mg, name)
    value, d1, d2, points, example = PRIMITIVE_FORMS[name]
    c = mg.compile(fn, example, method=method)
    c1 = mg.compile(mg.grad(fn), example, method=method)
    for x in points:
        v, (g,) = c(x)
        assert _close(v, value(x), 1e-15) and _close(g, d1(x), 1e-14), x
        v1, (g1,) = c1(x)
        assert _close(v1, d1(x), 1e-14) and _close(g1, d2(x), 1e-13), x


def test_sqrt_and_abs_at_zero_and_builtin_abs():
    """sqrt'(0) is +inf and abs'(0) is 0.0; the builtin abs(v) on a Value records mg.abs."""
    assert mg.grad(mg.sqrt)(0.0) == math.inf
    assert mg.grad(mg.abs)(0.0) == 0.0
    x, z = Value(0.0), Value(0.0)
    mg.sqrt(x).backward()
    abs(z).backward()
    assert x.grad == math.inf and z.grad == 0.0
    x = Value(-2.0)
    y = abs(x)
    assert isinstance(y, Value) and y.data == 2.0
    y.backward()
    assert x.grad == -1.0


def test_stop_gradient():
    """stop_gradient(x) has x's value and gradient 0; d/dx stop_gradient(x) * x is x, also compiled."""
    assert mg.stop_gradient(2.5) == 2.5
    x = Value(3.0)
    s = mg.stop_gradient(x)
    assert s.data == 3.0
    s.backward()
    assert x.grad == 0.0
    assert mg.grad(mg.stop_gradient)(2.5) == 0.0
    assert mg.grad(lambda v: mg.stop_gradient(v) * v)(3.0) == 3.0
    c = mg.compile(lambda v: mg.stop_gradient(v) * v, 3.0)
    assert c(5.0) == (25.0, (5.0,))
