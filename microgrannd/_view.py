"""Helpers shared by the drawing and the text tree: what a node shows.

Private: the public entry points are :func:`microgrannd.draw` and
:func:`microgrannd.tree`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from microgrannd.engine import Value
from microgrannd.ops import PRIMITIVES
from microgrannd.walk import toposort

Formatter = Callable[[float], str]


def formatter(spec: str | Formatter) -> Formatter:
    """A function float -> text from a format spec (``".4g"``) or a callable."""
    if callable(spec):
        return spec
    format(1.5, spec)  # a bad spec fails here, early and clearly
    return lambda x: format(x, spec)


def is_constant(v: Value) -> bool:
    """A leaf that takes no gradient (made from a plain number, or under no_grad)."""
    return not v.parents and not v.requires_grad


def folded_slots(v: Value) -> tuple[int, ...]:
    """Parent slots shown inside the op's symbol instead of as edges.

    These are a primitive's constant arguments (the exponent of ``pow``)
    when the parent there is a constant leaf: ``x ** 2`` shows ``^2``.
    """
    if not v.parents:
        return ()
    prim = PRIMITIVES[v.op]
    return tuple(i for i in prim.constant_args if is_constant(v.parents[i]))


def drawn_slots(v: Value) -> list[int]:
    """The parent slots that get an edge, in order (one per slot: ``x * x`` has two)."""
    folded = folded_slots(v)
    return [i for i in range(len(v.parents)) if i not in folded]


def drawn_nodes(root: Value) -> list[Value]:
    """The nodes reachable from ``root`` through drawn slots, in topological order."""
    reached = {root}
    stack = [root]
    while stack:
        v = stack.pop()
        for i in drawn_slots(v):
            p = v.parents[i]
            if p not in reached:
                reached.add(p)
                stack.append(p)
    return [v for v in toposort(root) if v in reached]


def drawn_consumers(nodes: list[Value]) -> dict[Value, list[Value]]:
    """For each node of ``nodes`` used through a drawn slot, the nodes that use it (once per slot)."""
    consumers: dict[Value, list[Value]] = {}
    for v in nodes:
        for i in drawn_slots(v):
            consumers.setdefault(v.parents[i], []).append(v)
    return consumers


def common_prefix(paths: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The longest scope path that starts every path of ``paths`` (scopes compared by identity)."""
    first = paths[0]
    n = min(len(p) for p in paths)
    k = 0
    while k < n and all(p[k] is first[k] for p in paths):
        k += 1
    return first[:k]


def op_symbol(v: Value, fmt: Formatter) -> str:
    """The symbol of ``v``'s operation, with folded constants: ``×``, ``exp``, ``^2``."""
    text = PRIMITIVES[v.op].symbol
    for i in folded_slots(v):
        text += fmt(v.parents[i].data)
    return text


def grads_computed(root: Value) -> bool:
    """Whether a backward pass has evidently reached ``root``.

    ``backward()`` sets the output's gradient to its seed (1.0 by default),
    and a freshly built node has gradient 0.0, so a zero gradient on the
    output means "not computed yet".  (A backward seeded with 0 is
    indistinguishable from none, and shows as not computed.)
    """
    g: Any = root.grad
    return isinstance(g, Value) or g != 0.0


def grad_float(g: Any) -> float:
    """A gradient field as a float (it is a Value after ``create_graph=True``)."""
    return g.data if isinstance(g, Value) else float(g)
