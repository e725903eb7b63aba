"""The compiled-function cache: one trace per argument structure, never a stale one."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import Value, demo_runner
from microgrannd.compile import CACHE_SIZE, key


def reference(f: Any, *args: Any) -> tuple[float, list[float]]:
    """``f``'s value and gradients over its float arguments (flattened), by the engine."""
    leaves: list[Value] = []

    def lift(a: Any) -> Any:
        if isinstance(a, float):
            leaves.append(Value(a))
            return leaves[-1]
        if isinstance(a, list):
            return [lift(x) for x in a]
        return a

    out = f(*[lift(a) for a in args])
    out.backward()
    return out.data, [v.grad for v in leaves]


def flatten(grads: Any) -> list[float]:
    if isinstance(grads, list | tuple):
        return [g for x in grads for g in flatten(x)]
    return [] if grads is None else [grads]


def norm(xs: list[Any]) -> Any:
    return sum((x * x for x in xs), 0.0)


def test_one_trace_per_length_and_the_engine_numbers() -> None:
    c = mg.compile(norm)
    rng = random.Random(1)
    for n in [3, 5, 3, 4, 5, 5, 3, 4]:
        xs = [rng.uniform(-1, 1) for _ in range(n)]
        value, (g,) = c(xs)
        assert (value, g) == reference(norm, xs)
        assert c.num_nodes == 3 * n + 1  # this length's graph: n inputs, n squares, n adds, the 0.0
    info = c.cache_info()
    assert (info.hits, info.misses, info.currsize, info.maxsize) == (5, 3, 3, CACHE_SIZE)
    assert info.compile_seconds > 0


def test_nothing_is_traced_before_the_first_call() -> None:
    c = mg.compile(norm)
    with pytest.raises(RuntimeError, match="not been traced yet"):
        c.source  # noqa: B018
    assert "not traced yet" in repr(c)
    assert c.cache_info().misses == 0
    c([1.0])
    assert c.source is not None and "1 misses" in repr(c)
    e = mg.compile(norm, [1.0, 2.0])  # an example traces at once (a miss)
    assert e.cache_info().misses == 1 and e([3.0, 4.0])[0] == 25.0 and e.cache_info().hits == 1


def test_a_static_int_is_part_of_the_key_and_may_steer_python() -> None:
    def f(x: Any, power: int, mode: str, flag: bool, nothing: None) -> Any:
        y = x
        for _ in range(power - 1):
            y = y * x
        if mode == "neg":
            y = -y
        return y + 1.0 if flag else y

    c = mg.compile(f, static_argnums=1)
    for power, mode, flag in [(2, "pos", True), (3, "pos", True), (2, "neg", False), (2, "pos", True),
                              (3, "pos", True), (2, "neg", True)]:
        value, grads = c(1.5, power, mode, flag, None)
        expected = reference(f, 1.5, power, mode, flag, None)
        assert (value, [grads[0]]) == expected
        assert grads[1:] == (None, None, None, None)  # static arguments get no gradient
    assert c.cache_info()[:2] == (2, 4)
    # 1 and True hash alike, but are different keys
    assert key((1,), (0,)) != key((True,)) and key((2.0,)) == key((Value(3.0),))


def test_an_int_is_a_number_unless_declared_static() -> None:
    c = mg.compile(lambda x, n: x * n)
    for n in (2, 3, 4):
        assert c(1.5, n) == (1.5 * n, (float(n), 1.5))  # n is an input: it has a gradient
    assert c.cache_info()[:2] == (2, 1)  # one trace serves every n
    with pytest.raises(TypeError, match="static argument #1 must be hashable"):
        mg.compile(lambda x, xs: x, static_argnums=1)(1.0, [1.0])
    with pytest.raises(ValueError, match="static_argnums"):
        mg.compile(lambda x: x, static_argnums=-1)


def test_numbers_inside_lists_are_inputs_even_ints() -> None:
    c = mg.compile(lambda xs, w: mg.gather(xs, w[0]) * w[1])
    for i in (0, 2, 1):
        assert c([1.0, 2.0, 3.0], [i, 5.0]) == (5.0 * (i + 1), ([0.0, 0.0, 0.0][:i] + [5.0] + [0.0] * (2 - i),
                                                             [0.0, float(i + 1)]))
    assert c.cache_info()[:2] == (2, 1)  # one trace: the int index is data


def test_least_recently_used_goes_first() -> None:
    c = mg.compile(norm, cache_size=2)
    c([1.0])
    c([1.0, 2.0])
    c([1.0])  # now [1] is the most recent
    c([1.0, 2.0, 3.0])  # evicts the length-2 trace
    assert c.cache_info()[:4] == (1, 3, 2, 2)
    c([1.0])
    assert c.cache_info()[:2] == (2, 3)
    c([1.0, 2.0])  # traced again
    assert c.cache_info()[:2] == (2, 4)
    c.cache_clear()
    assert c.cache_info()[:4] == (0, 0, 2, 0)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="cache_size"):
            mg.compile(norm, cache_size=bad)


def test_values_and_floats_share_a_trace_and_backward_fills_the_values() -> None:
    c = mg.compile(lambda xs, s: norm(xs) * s)
    xs = [Value(1.0), Value(2.0)]
    s = Value(3.0)
    assert c.backward(xs, s) == 15.0
    assert [x.grad for x in xs] == [6.0, 12.0] and s.grad == 5.0
    assert c([1.0, 2.0], 3.0) == (15.0, ([6.0, 12.0], 5.0))
    assert c.backward([1.0, 2.0], s) == 15.0 and s.grad == 10.0
    assert c.cache_info()[:2] == (2, 1)


def test_invalid_structures_are_clear_errors_and_are_not_cached() -> None:
    c = mg.compile(lambda xs, s: norm(xs) * s)
    with pytest.raises(TypeError, match=r"argument #0\[1\] is a str"):
        c([1.0, "a"], 2.0)
    with pytest.raises(TypeError, match=r"argument #1 is a dict"):
        c([1.0], {"s": 2.0})
    with pytest.raises(TypeError, match=r"argument #0\[0\] is a bool"):
        c([True], 2.0)

    def branchy(x: Any) -> Any:
        return x if x > 0 else -x

    b = mg.compile(branchy)
    for _ in range(2):  # a failed trace is not kept: it fails again
        with pytest.raises(mg.TraceError):
            b(1.0)
    assert b.cache_info()[:4] == (0, 2, CACHE_SIZE, 0)
    # argnums is checked against each call's arguments
    a = mg.compile(lambda *xs: sum(xs, 0.0), argnums=2)
    assert a(1.0, 2.0, 3.0) == (6.0, 1.0)
    with pytest.raises(IndexError, match="argnums 2 out of range for 2 arguments"):
        a(1.0, 2.0)


def test_closure_values_are_read_at_every_call_whatever_the_trace() -> None:
    w = Value(2.0)
    c = mg.compile(lambda xs: norm(xs) * w, argnums=())
    assert c.backward([1.0]) == 2.0 and w.grad == 1.0
    w.data = 3.0
    assert c.backward([1.0, 1.0]) == 6.0 and w.grad == 3.0
    assert c.backward([2.0]) == 12.0 and w.grad == 7.0


def _toy() -> Any:
    return demo_runner.load(Path(__file__).resolve().parent.parent / "demos" / "sequence_compile.py")


def test_a_sequence_model_trains_the_same_compiled_with_one_trace_per_length() -> None:
    r = _toy().run(steps=40, dim=3, vocab=5, seed=2, warmup=0)
    assert r.losses_equal and r.grads_equal
    assert r.misses == len(r.nodes) == 6  # lengths 3..8, each traced once
    assert r.hits == 40 - 6
    assert list(r.nodes) == list(range(3, 9)) and r.nodes[8] > r.nodes[3]


def test_compiled_training_matches_step_by_step() -> None:
    """Loss and gradients of every step, compared outside the demo's own check."""
    sc = _toy()
    a, b = sc.make_params(4, 3, 1), sc.make_params(4, 3, 1)
    pa, pb = sc.parameters(a), sc.parameters(b)
    step = mg.compile(lambda tokens: sc.sequence_loss(b, tokens), argnums=())
    for seq in sc.make_data(12, 4, 1):
        loss = sc.sequence_loss(a, [Value(float(t), requires_grad=False) for t in seq])
        loss.backward()
        assert step.backward([float(t) for t in seq]) == loss.data
        assert [p.grad for p in pa] == [q.grad for q in pb]
        assert any(p.grad != 0.0 for p in pa[:12])  # the embedding rows receive gradients
        sc.sgd(pa, 0.2)
        sc.sgd(pb, 0.2)
    assert [p.data for p in pa] == [q.data for q in pb]
