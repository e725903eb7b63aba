"""Walking the graph: topological order, a node's local derivatives, the one backward kernel.

Every consumer (``Value.backward``, :func:`gradients`, ``grad``, the drawing's
backward view, the gradient checker, the compiler) gets its order from
:func:`toposort` and its derivatives from :func:`vjp` /
:func:`local_derivatives`, which read the primitive table.  No walk recurses,
and no walk keeps its bookkeeping in ``grad``: a visit is marked with a number
of its own in the node's ``_mark`` slot, so an interrupted walk leaves nothing
behind that the next one could mistake.
"""

from __future__ import annotations

import itertools
import math
import numbers
import threading
from contextlib import nullcontext
from typing import Any

from microgrannd.modes import _changed, current_mode
from microgrannd.ops import PRIMITIVES

__all__ = ["toposort", "count_nodes", "gradients", "local_derivatives", "vjp", "backprop", "push_tangents"]

_walks = itertools.count(1)  # each walk marks with two fresh numbers: entered, done
_lock = threading.Lock()  # one marking walk at a time: threads never see each other's marks


def _order(root: Any, leaves: list[Any] | None = None) -> list[Any]:
    """The nodes ``root`` depends on, each once, parents before children (no recursion).

    With a ``leaves`` list, the order holds only the interior nodes, and the
    leaves that take gradients (not constants) are appended to ``leaves``.
    """
    with _lock:
        entered = 2 * next(_walks)
        done = entered + 1
        order: list[Any] = []
        stack = [root]
        keep_leaves = leaves is None
        while stack:
            v = stack.pop()
            mark = v._mark
            if mark == entered:  # second visit: its parents are all in order now
                v._mark = done
                order.append(v)
                continue
            if mark == done:
                continue
            while v is not None:  # enter v, then walk on into its last parent not yet done
                v._mark = entered
                stack.append(v)
                nxt = None
                for p in v.parents:
                    if p._mark != done:
                        if p.parents or keep_leaves:
                            if nxt is not None:
                                stack.append(nxt)
                            nxt = p
                        elif p.requires_grad:  # a leaf is set aside at once
                            p._mark = done
                            leaves.append(p)  # type: ignore[union-attr]
                v = nxt
        return order


def toposort(root: Any) -> list[Any]:
    """Every node ``root`` depends on, once each, parents before children."""
    return _order(root)


def count_nodes(root: Any, limit: int) -> int:
    """How many nodes ``root`` depends on (itself included), counting no further than ``limit + 1``.

    A size check that costs ``O(limit)``, not ``O(graph)``: the drawing and the
    explorer refuse a million-node graph without walking it.  It marks nothing.
    """
    seen = {id(root)}
    stack = [root]
    while stack and len(seen) <= limit:
        for p in stack.pop().parents:
            if id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return min(len(seen), limit + 1)


def local_derivatives(v: Any) -> tuple[float, ...]:
    """The local derivatives of interior node ``v``, one per parent slot, as floats."""
    return PRIMITIVES[v.op].derivatives(*[p.data for p in v.parents], v.data)


def _number(x: Any) -> float:
    return x.data if hasattr(x, "parents") else x  # a Value's number, or the number itself


def vjp(v: Any, g: Any, create_graph: bool = False) -> tuple[Any, ...] | None:
    """What each parent of ``v`` receives when ``g`` flows into ``v``; None if nothing flows.

    A zero gradient sends nothing back, even where a local derivative is
    infinite (``0 * inf`` would be NaN).  With ``create_graph`` the rule runs on
    Values and returns Values (constants enter it as floats); where ``g`` is a
    Value worth zero, a contribution that is not finite is dropped, and finite
    ones are kept for the derivatives they carry.
    """
    prim = PRIMITIVES[v.op]
    if not create_graph:
        return None if g == 0.0 else prim.vjp(g, *[p.data for p in v.parents], v.data)
    zero = _number(g) == 0.0
    if zero and type(g) is float:
        return None
    cs = prim.vjp(g, *[p if p.requires_grad else p.data for p in v.parents], v)
    if zero and current_mode().node_type is None:  # (a traced graph stays faithful to every input)
        cs = tuple(c if math.isfinite(_number(c)) else 0.0 for c in cs)
    return cs


def backprop(root: Any, seed: Any = 1.0, *, create_graph: bool = False, fields: bool = False,
             order: list[Any] | None = None) -> dict[Any, Any]:
    """The backward kernel: ``{node: d root / d node}`` over ``order`` (default: ``root``'s interior nodes).

    With ``fields=True`` the gradients go into ``grad`` instead: interior nodes
    are recomputed, leaves accumulate, and an interruption (Ctrl-C) restores
    every leaf's gradient (a constant's is scratch: nothing reads it).  First
    order, that runs on floats by an arity-unrolled fast path.  Nodes that
    receive nothing may be missing.
    """
    if current_mode().node_type is not None:
        create_graph = True  # traced numbers stay traced
    leaves: list[Any] = []
    if order is None:
        order = _order(root, leaves)
    grads: dict[Any, Any] = {root: seed}
    if create_graph or not fields:
        with _changed(checked=False) if create_graph else nullcontext():
            for v in reversed(order):
                g = grads.get(v)
                cs = None if g is None else vjp(v, g, create_graph)
                if cs is not None:
                    for p, c in zip(v.parents, cs, strict=True):
                        grads[p] = grads[p] + c if p in grads else c
        if not fields:
            return grads
    saved = [v.grad for v in leaves]
    for v in leaves:
        if v.grad is None:  # PyTorch's "no gradient yet"
            v.grad = 0.0
    try:
        if create_graph:
            for v in order:
                v.grad = grads.get(v, 0.0)
            for v in leaves:
                if v in grads:
                    old = v.grad
                    v.grad = grads[v] if type(old) is float and old == 0.0 else old + grads[v]
            return grads
        for v in order:
            v.grad = 0.0
        root.grad = seed
        rules = {name: prim.vjp for name, prim in PRIMITIVES.items()}
        for v in reversed(order):
            g = v.grad
            if g == 0.0:  # nothing flows back (and 0 * inf stays 0)
                continue
            op = v.op
            if op == "mul":  # the table's two commonest rules, inlined: (g * b, g * a) and (g, g)
                a, b = v.parents
                da, db = g * b.data, g * a.data
            elif op == "add":
                a, b = v.parents
                da = db = g
            elif len(parents := v.parents) == 2:
                a, b = parents
                da, db = rules[op](g, a.data, b.data, v.data)
            elif len(parents) == 1:
                (a,) = parents
                (da,) = rules[op](g, a.data, v.data)
                a.grad += da
                continue
            else:
                for p, d in zip(parents, rules[op](g, *[p.data for p in parents], v.data), strict=True):
                    p.grad += d
                continue
            a.grad += da
            b.grad += db
    except BaseException:
        for v in order:
            v.grad = 0.0
        for v, old in zip(leaves, saved, strict=True):  # as before the call
            v.grad = old
        raise
    return grads


def push_tangents(order: list[Any], tangents: dict[Any, Any], create_graph: bool = False) -> dict[Any, Any]:
    """Forward mode: carry ``tangents`` (``{leaf: d leaf}``) through ``order``, parents first.

    A node's tangent is the sum over its parents of what :func:`vjp` sends
    back to that parent for the parent's tangent (``g`` times the local
    derivative is linear in ``g``), so forward mode runs the very rules that
    backward does.  As there, zero times infinity is zero: a zero tangent
    sends nothing on, nor does a zero local derivative, even where the tangent
    has overflowed to ``inf``.  Returns ``tangents`` with every node that
    receives one.
    """
    with _changed(checked=False) if create_graph else nullcontext():
        for v in order:
            if not v.parents:
                continue
            total = None
            for i, p in enumerate(v.parents):
                t = tangents.get(p)
                cs = None if t is None else vjp(v, t, create_graph)
                if cs is not None:
                    c = cs[i]
                    if math.isnan(_number(c)) and math.isinf(_number(t)) and local_derivatives(v)[i] == 0.0:
                        c = 0.0  # an overflowed tangent times a zero local derivative sends nothing on
                    total = c if total is None else total + c
            if total is not None:
                tangents[v] = total
    return tangents


def gradients(root: Any, seed: Any = 1.0, *, create_graph: bool = False) -> Any:
    """Return ``{node: d root / d node}`` for the nodes ``root`` depends on.

    Unlike ``backward`` this touches no ``grad`` field.  A node that receives
    no gradient may be missing from the dict (read it with ``.get(node,
    0.0)``).  With ``create_graph=True`` the gradients are Values (or floats
    where they are constant), built from the same derivative rules, so they
    can be differentiated again; they hold no reference cycle.

    Given a list or tuple of nodes in place of ``seed`` (as
    ``torch.autograd.grad(y, [x])``), it returns their gradients in a list
    instead, 0.0 for a node that ``root`` does not depend on.
    """
    if isinstance(seed, list | tuple):
        table = gradients(root, create_graph=create_graph)
        return [table.get(v, 0.0) for v in seed]
    if isinstance(seed, bool) or not (isinstance(seed, numbers.Real) or hasattr(seed, "parents")):
        raise TypeError(f"gradients: the seed must be a number (or a list of nodes), not {type(seed).__name__}")
    seed = seed if hasattr(seed, "parents") else float(seed)
    if not root.parents:
        return {root: seed}
    return backprop(root, seed, create_graph=create_graph)
