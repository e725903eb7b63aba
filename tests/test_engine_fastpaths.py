"""The engine's fast paths (operators, the backward walk) agree with its general ones."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

import microgrannd as mg
from microgrannd import Value


def random_graph(rng: random.Random) -> tuple[Value, list[Value], list[Value]]:
    """A random DAG with shared sub-expressions, repeated parents and constants."""
    leaves = [Value(rng.uniform(0.5, 2.0), f"x{i}") for i in range(3)]
    nodes = list(leaves)
    for _ in range(rng.randint(1, 30)):
        a, b = rng.choice(nodes), rng.choice(nodes)
        k = rng.randrange(7)
        v = (a + b, a * b, a * a, (a * 0.5).relu(), (a * 0.1).tanh(), 2.0 * a + 1, abs(a.data) ** 0.5 + a)[k]
        nodes.append(v if isinstance(v, Value) else a)
    return nodes[-1], leaves, nodes


@pytest.mark.parametrize("seed", range(40))
def test_backward_matches_gradients_on_random_dags(seed: int) -> None:
    root, leaves, nodes = random_graph(random.Random(seed))
    want = mg.gradients(root)  # a separate walk (toposort) and accumulation
    root.backward()
    for v in set(nodes):
        if v.parents or v in leaves:
            assert type(v.grad) is float  # no walk mark is left behind
            assert v.grad == pytest.approx(want.get(v, 0.0), rel=1e-12, abs=1e-12)


def test_interior_grads_are_recomputed_and_leaves_accumulate() -> None:
    x = Value(1.5)
    y = x * x + x
    y.backward()
    first = (x.grad, y.grad)
    y.backward()
    assert y.grad == first[1] == 1.0
    assert x.grad == 2 * first[0]


def test_plain_number_operands_of_every_kind() -> None:
    x = Value(2.0)
    for other in (3, 3.0, Fraction(3, 1)):
        assert (x + other).data == 2.0 + float(other)
        assert (other * x).data == 2.0 * float(other)
        assert (x**other).data == 2.0 ** float(other)
    for bad in ("3", True):
        with pytest.raises(TypeError):
            x + bad  # type: ignore[operator]


def test_domain_errors_still_raised_on_the_fast_paths() -> None:
    with pytest.raises(mg.ZeroDivisionDomainError):
        Value(0.0) ** -1
    with pytest.raises(mg.DomainError):
        Value(-1.0) ** 0.5
    with pytest.raises(mg.DomainError):
        Value(0.0).log()


def test_deep_chain_backward() -> None:
    x = Value(0.5)
    y = x
    for _ in range(50_000):
        y = y * 1.0001 + 0.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**50_000, rel=1e-9)
