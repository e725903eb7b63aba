"""The engine's speed paths give exactly what its general paths give.

``+``, ``*``, unary ``-`` and ``relu`` compute their forward inline instead of
calling the primitive table; in the default mode the node is built without
the general recording helper; the backward kernel applies the ``add`` and
``mul`` rules inline; the order walk was rewritten for fewer steps.  Each is
checked here against the general path, bit for bit (``-0.0`` and NaN
included), not to a tolerance.
"""

from __future__ import annotations

import math
import random
import struct
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import Value, modes, walk
from microgrannd.ops import ADD, MUL, PRIMITIVES, RELU

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e-310, -1e-310, 1e308, -1e308, math.inf, -math.inf, math.nan]


def bits(x: float) -> bytes:
    """The float's IEEE bits, so that ``-0.0 != 0.0`` and NaN equals NaN."""
    return struct.pack("<d", x)


def points(n: int = 200) -> list[tuple[float, float]]:
    rng = random.Random(7)
    xs = SPECIAL + [rng.uniform(-5, 5) for _ in range(20)] + [rng.gauss(0, 1e-300) for _ in range(5)]
    return [(a, b) for a in xs for b in xs][:: max(1, len(xs) ** 2 // n)]


@pytest.mark.parametrize(("symbol", "prim"), [("+", ADD), ("*", MUL)])
def test_inline_forwards_equal_the_table(symbol: str, prim: Any) -> None:
    for a, b in points():
        want = bits(prim.forward(a, b))
        x, y = Value(a), Value(b)
        made = [x + y, x + b, a + y] if symbol == "+" else [x * y, x * b, a * y]
        for v in made:
            assert bits(v.data) == want, (symbol, a, b)
            assert v.op == prim.name


def test_negation_and_relu_equal_the_table() -> None:
    for a in SPECIAL:
        assert bits((-Value(a)).data) == bits(MUL.forward(a, -1.0))
        assert bits(Value(a).relu().data) == bits(RELU.forward(a))
        assert bits(mg.relu(Value(a)).data) == bits(RELU.forward(a))  # the general path, through apply


def shape(v: Value) -> tuple[Any, ...]:
    """Every field of ``v``, with its constant parents (fresh objects) compared by their fields."""
    parents = tuple(p if p.requires_grad else shape(p) for p in v.parents)
    return (type(v), v.op, parents, v.label, v.scope, v.requires_grad, v._mark, bits(v.grad), bits(v.data))


def test_default_mode_nodes_are_the_general_paths_nodes() -> None:
    x, y = Value(1.5), Value(-2.0)
    fast = [x + y, x * y, x + 2.0, 3.0 * y, -x, x.relu(), x.exp(), x**2.0, x - 1]
    with modes._changed(checked=False):  # not the default mode: the general path, same fields
        assert modes.current_mode() is not modes.DEFAULT
        general = [x + y, x * y, x + 2.0, 3.0 * y, -x, x.relu(), x.exp(), x**2.0, x - 1]
    assert [shape(v) for v in fast] == [shape(v) for v in general]


def test_scopes_no_grad_and_tracing_leave_the_fast_path() -> None:
    x = Value(2.0)
    with mg.scope("outer") as s:
        assert (x + x).scope is s and (x * x).scope is s and x.relu().scope is s
    with mg.no_grad():
        for v in (x + x, x * 3.0, x.relu(), -x):
            assert v.op == "" and v.parents == () and not v.requires_grad
    with mg.scope("outer"), mg.no_grad():  # a scope does not hide no_grad from + and *
        for v in (x + x, x * 3.0, x.relu(), -x):
            assert v.op == "" and v.parents == () and not v.requires_grad
    c = mg.compile(lambda a: (a + 1.0) * a, 2.0)
    assert c(3.0) == (12.0, (7.0,))
    with mg.scope("outer"):  # nor tracing
        c = mg.compile(lambda a: (a + 1.0) * a, 2.0)
        assert c(3.0) == (12.0, (7.0,)) and c(5.0) == (30.0, (11.0,))


def test_leaving_every_block_restores_the_default_mode_object() -> None:
    assert modes.current_mode() is modes.DEFAULT
    with mg.no_grad():
        assert modes.current_mode() is not modes.DEFAULT
        with mg.enable_grad():  # back to the default's fields: the default object itself
            assert modes.current_mode() is modes.DEFAULT
    with mg.enable_grad():  # a block that changes nothing: still the default, still fast
        assert modes.current_mode() is modes.DEFAULT
    with mg.scope("s"):
        pass
    assert modes.current_mode() is modes.DEFAULT


def random_dag(rng: random.Random, size: int) -> tuple[Value, list[Value]]:
    """Shared nodes, repeated parents, constants, and every arity of the table's rules."""
    leaves = [Value(rng.uniform(-2, 2), f"x{i}") for i in range(4)]
    nodes = list(leaves)
    for _ in range(size):
        a, b = rng.choice(nodes[-6:] + nodes), rng.choice(nodes)
        k = rng.randrange(9)
        v = [a + b, a * b, a * a, a + a, a * 0.5, 2.0 + a, a.relu(), mg.tanh(a), a - b][k]
        nodes.append(v)
    return nodes[-1], leaves


@pytest.mark.parametrize("seed", range(30))
def test_backward_kernel_equals_the_tables_rules_bit_for_bit(seed: int) -> None:
    root, leaves = random_dag(random.Random(seed), 40)
    want = mg.gradients(root)  # every rule through the table's vjp
    root.backward()
    for x in leaves:  # backward adds into the leaf's 0.0 (which turns -0.0 into 0.0)
        assert bits(x.grad) == bits(0.0 + want.get(x, 0.0))


@pytest.mark.parametrize("g", [math.inf, -math.inf, math.nan, 1e308, -0.0])
def test_inline_rules_at_extreme_upstream_gradients(g: float) -> None:
    x, y = Value(3.0), Value(-0.0)
    for f in (lambda: x * y, lambda: x + y, lambda: (x * y) + (x * x)):
        want = mg.gradients(f(), g)
        x.grad = y.grad = 0.0
        f().backward(g)
        assert (bits(x.grad), bits(y.grad)) == (bits(0.0 + want.get(x, 0.0)), bits(0.0 + want.get(y, 0.0)))


def reference_order(root: Any, leaves: list[Any] | None = None) -> list[Any]:
    """The order walk as it was written before its speed-up (with a set for marks)."""
    entered: set[int] = set()
    done: set[int] = set()
    order: list[Any] = []
    stack = [root]
    while stack:
        v = stack.pop()
        if id(v) in entered and id(v) not in done:
            done.add(id(v))
            order.append(v)
            continue
        while v is not None and id(v) not in done:
            entered.add(id(v))
            stack.append(v)
            nxt = None
            for p in v.parents:
                if id(p) not in done:
                    if p.parents or leaves is None:
                        if nxt is not None:
                            stack.append(nxt)
                        nxt = p
                    elif p.requires_grad:
                        done.add(id(p))
                        leaves.append(p)
            v = nxt
    return order


@pytest.mark.parametrize("seed", range(30))
def test_the_order_walk_visits_in_the_same_order_as_before(seed: int) -> None:
    root, _ = random_dag(random.Random(seed), 60)
    assert walk.toposort(root) == reference_order(root)
    got_leaves: list[Value] = []
    want_leaves: list[Value] = []
    assert walk._order(root, got_leaves) == reference_order(root, want_leaves)
    assert got_leaves == want_leaves


def test_every_primitive_still_has_its_rule_in_the_table() -> None:
    assert PRIMITIVES["add"].vjp(1.5, 2.0, 3.0, 5.0) == (1.5, 1.5)
    assert PRIMITIVES["mul"].vjp(1.5, 2.0, 3.0, 6.0) == (1.5 * 3.0, 1.5 * 2.0)
