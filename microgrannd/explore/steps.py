"""The explorer's graph and its walk-through, computed once in Python.

:func:`build` turns a graph into a :class:`Graph`: its drawn nodes in
topological order, each with its local derivatives
(:func:`~microgrannd.walk.local_derivatives`) and the gradient it sends to
each parent (:func:`~microgrannd.walk.vjp` of its gradient from
:func:`~microgrannd.walk.backprop`), and its composite calls (scopes), each
with its composite local derivatives ``d output / d input`` (``backprop`` over
the call's own nodes) and the gradient it sends to each input.

Which calls are collapsed is a *state* (a set of scope indices).  For a state,
:func:`units` lists what the walk-through steps through (a node, or a
collapsed call as one unit) in backward order and :func:`walkthrough` the
steps: forward, one unit at a time, then the seed, then backward, one step
per (unit, input) edge, with the running sum at each input.  The page runs
the same two functions, written line for line in its script, on the numbers
computed here, and shows the same lines (:func:`Step.text`); every number it
multiplies was computed here, it only adds the running sums, in the same
order.  With every call expanded the running sums are the very floats
``backward`` computes (the same contributions, added in the same order).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from microgrannd._view import (
    common_prefix,
    drawn_consumers,
    drawn_nodes,
    drawn_slots,
    formatter,
    is_constant,
    op_symbol,
)
from microgrannd.engine import Value
from microgrannd.modes import Scope
from microgrannd.walk import backprop, count_nodes, gradients, local_derivatives, vjp

__all__ = [
    "AUTO_STEPS",
    "DEFAULT_MAX_NODES",
    "MAX_DRAWN",
    "Graph",
    "NodeInfo",
    "ScopeInfo",
    "Step",
    "Unit",
    "auto_collapsed",
    "build",
    "collapsed_scopes",
    "drawn_count",
    "fmt",
    "units",
    "walkthrough",
]

#: The most nodes a graph may have (counted with ``count_nodes``, before any other work).
DEFAULT_MAX_NODES = 5000
#: ``collapse=None`` expands calls, shallowest first, while the walk-through has at most this many steps.
AUTO_STEPS = 100
#: The most nodes (values, ops, collapsed calls) the page draws at once: Graphviz takes seconds for
#: 1,500 and minutes for 10,000.
MAX_DRAWN = 2500

_four_digits = formatter(".4g")


def fmt(x: float) -> str:
    """A number as the walk-through shows it: 4 significant digits (``format(x, ".4g")``)."""
    return _four_digits(x)


@dataclass
class NodeInfo:
    """One drawn value: where it sits, what it computes, what flows back from it."""

    index: int
    value: Value
    name: str
    kind: str  # input, parameter, intermediate, output, constant
    symbol: str  # the op's symbol with folded constants ("" for a leaf)
    parents: list[int]  # node index per drawn slot
    locals: list[float]  # local derivative per drawn slot
    flows: list[float | None]  # what each drawn slot receives (None: nothing flows)
    path: list[int]  # the enclosing scopes, outermost first
    grad: float  # d root / d node, as backward computes it

    @property
    def constant(self) -> bool:
        """A leaf that takes no gradient."""
        return self.kind == "constant"


@dataclass
class ScopeInfo:
    """One composite call: its nodes, inputs, outputs and composite local derivatives."""

    index: int
    name: str
    parent: int  # -1 at top level
    depth: int
    members: list[int] = field(default_factory=list)  # nodes inside, nested calls included
    inputs: list[int] = field(default_factory=list)  # nodes outside read by members
    outputs: list[int] = field(default_factory=list)  # members read outside (or the root)
    locals: list[list[float]] = field(default_factory=list)  # [output][input]: d output / d input
    flows: list[float | None] = field(default_factory=list)  # per input: what flows through the call


@dataclass
class Graph:
    """A graph ready to explore: nodes in topological order, scopes by call order."""

    nodes: list[NodeInfo]
    scopes: list[ScopeInfo]
    upstream: float

    @property
    def root(self) -> NodeInfo:
        """The output node (last in topological order)."""
        return self.nodes[-1]


@dataclass
class Unit:
    """What one forward step computes: a node, or a collapsed call as one unit."""

    key: int  # the largest node index inside: ties in the order go to the larger key
    node: int  # the node (or -1)
    scope: int  # the collapsed call (or -1)
    inputs: list[int]  # node indices, one per edge (a node's drawn slots, a call's inputs)
    outputs: list[int]


@dataclass
class Step:
    """One step of the walk-through (see :meth:`text` for what the page and ``step`` print)."""

    kind: str  # "forward", "seed" or "backward"
    number: int  # 1-based within its kind
    of: int  # how many of its kind
    unit: Unit | None = None
    input: int = -1  # backward: the node receiving the contribution
    upstream: list[float] = field(default_factory=list)  # per output of the unit: its gradient so far
    local: list[float] = field(default_factory=list)  # per output: d output / d input
    contribution: float | None = None  # None: nothing flows (a zero gradient)
    running: list[float] = field(default_factory=list)  # the input's contributions so far
    total: float = 0.0  # their sum, in order

    def text(self, g: Graph) -> str:
        """The step as one line of text, with numbers to 4 significant digits."""
        if self.kind == "seed":
            return f"seed: {g.root.name}.grad = upstream = {fmt(g.upstream)}"
        u = self.unit
        assert u is not None
        head = f"{self.kind} {self.number}/{self.of}: "
        outs = ", ".join(g.nodes[o].name for o in u.outputs)
        if self.kind == "forward":
            args = ", ".join(g.nodes[i].name for i in u.inputs)
            what = g.nodes[u.node].symbol if u.node >= 0 else g.scopes[u.scope].name
            values = ", ".join(fmt(g.nodes[o].value.data) for o in u.outputs)
            return f"{head}{outs} = {what}({args}) = {values}"
        name = g.nodes[self.input].name
        source = outs if u.node >= 0 else f"{g.scopes[u.scope].name}[{u.scope}]"
        terms = " + ".join(f"upstream {fmt(up)} × local {fmt(d)}" for up, d in zip(self.upstream, self.local,
                                                                                   strict=True))
        if self.contribution is None:
            return f"{head}{source} -> {name}: {terms}: nothing flows (zero gradient)"
        sums = " + ".join(fmt(c) for c in self.running)
        total = sums if len(self.running) == 1 else f"{sums} = {fmt(self.total)}"
        return f"{head}{source} -> {name}: {terms} = {fmt(self.contribution)}; {name}.grad = {total}"


# --------------------------------------------------------------------------
# Building the graph


def _names(nodes: list[Value], params: set[Value]) -> list[str]:
    """A short unique name per node: its label, else its op (param, leaf) and position; constants show their value."""
    names: list[str] = []
    taken: set[str] = set()
    for i, v in enumerate(nodes):
        if is_constant(v) and not v.label:
            names.append(fmt(v.data))
            continue
        base = v.label or f"{v.op or ('param' if v in params else 'leaf')}{i}"
        name = base if base not in taken else f"{base}#{i}"
        taken.add(name)
        names.append(name)
    return names


def build(root: Value, upstream: float = 1.0, *, max_nodes: int = DEFAULT_MAX_NODES,
          params: Iterable[Value] = ()) -> Graph:
    """The explorer's :class:`Graph` of ``root`` with backward seeded by ``upstream``.

    Counts first (``count_nodes``): a graph of more than ``max_nodes`` nodes
    raises :class:`~microgrannd.draw.GraphTooLargeError` at once.  Leaves in
    ``params`` (and the weights of every ``nn`` neuron alive) sit inside the
    call that uses them, like the constants of a composite, so a collapsed
    layer hides its weights.
    """
    from microgrannd.draw import GraphTooLargeError, _neuron_parameters

    if not isinstance(root, Value):
        raise TypeError(f"explore() needs a Value, not {type(root).__name__}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"max_nodes must be a positive int, not {max_nodes!r}")
    if isinstance(upstream, bool) or not isinstance(upstream, int | float) or not math.isfinite(upstream):
        raise ValueError(f"upstream must be a finite number, not {upstream!r}")
    counted = count_nodes(root, max_nodes)
    if counted > max_nodes:
        raise GraphTooLargeError(
            f"the graph has more than max_nodes={max_nodes} nodes, too many to explore in a page "
            "(it carries every node so that each composite call can be expanded); explore a part of it "
            "(one example instead of a batch, a smaller network, a sub-expression), "
            "or raise the limit: mg.explore(y, max_nodes=...) (or --max-nodes on the command line)",
            count=counted, max_nodes=max_nodes,
        )
    upstream = float(upstream)
    order = drawn_nodes(root)
    index = {v: i for i, v in enumerate(order)}
    consumers = drawn_consumers(order)
    placed_leaves = set(params) | (_neuron_parameters() if any(not v.parents for v in order) else set())
    paths: dict[Value, tuple[Scope, ...]] = {}
    for v in reversed(order):  # consumers before their parents
        if not v.parents and v in consumers and ((is_constant(v) and not v.label) or v in placed_leaves):
            paths[v] = common_prefix([paths[c] for c in consumers[v]])
        else:
            paths[v] = v.scope.path() if v.scope is not None else ()
    # scopes by call order
    all_scopes = sorted({s for p in paths.values() for s in p}, key=lambda s: s.id)
    sidx = {s: k for k, s in enumerate(all_scopes)}
    scopes = [ScopeInfo(k, s.name, sidx.get(s.parent, -1) if s.parent else -1, len(s.path()) - 1)
              for k, s in enumerate(all_scopes)]
    grads: dict[Value, float] = gradients(root, upstream)
    names = _names(order, placed_leaves)
    nodes: list[NodeInfo] = []
    for i, v in enumerate(order):
        slots = drawn_slots(v)
        ds = local_derivatives(v) if v.parents else ()
        g = grads.get(v, 0.0)
        cs = vjp(v, g) if v.parents else None
        if v is root:
            kind = "output"
        elif is_constant(v):
            kind = "constant"
        elif v.parents:
            kind = "intermediate"
        else:
            kind = "parameter" if v in placed_leaves else "input"
        nodes.append(NodeInfo(
            index=i, value=v, name=names[i], kind=kind,
            symbol=op_symbol(v, fmt) if v.parents else "",
            parents=[index[v.parents[s]] for s in slots],
            locals=[float(ds[s]) for s in slots],
            flows=[None if cs is None else float(cs[s]) for s in slots],
            path=[sidx[s] for s in paths[v]],
            grad=float(g),
        ))
        for s in paths[v]:
            scopes[sidx[s]].members.append(i)
    graph = Graph(nodes, scopes, upstream)
    readers: dict[int, list[int]] = {}
    for n in nodes:
        for k in n.parents:
            readers.setdefault(k, []).append(n.index)
    for info in scopes:
        _fill_scope(graph, info, readers)
    return graph


def _fill_scope(g: Graph, s: ScopeInfo, readers: dict[int, list[int]]) -> None:
    """A call's inputs, outputs, composite local derivatives and the gradient through it."""
    inside = set(s.members)
    root = len(g.nodes) - 1
    flows: dict[int, float] = {}  # what flows into each input through the call, in the order backward adds it
    for m in reversed(s.members):
        node = g.nodes[m]
        for p, c in zip(node.parents, node.flows, strict=True):
            if p not in inside and c is not None:
                flows[p] = c if p not in flows else flows[p] + c
    for m in s.members:
        for p in g.nodes[m].parents:
            if p not in inside and p not in s.inputs:
                s.inputs.append(p)
        if m == root or any(c not in inside for c in readers.get(m, ())):
            s.outputs.append(m)
    interior = [g.nodes[m].value for m in s.members if g.nodes[m].value.parents]
    for o in s.outputs:
        acc = backprop(g.nodes[o].value, 1.0, order=interior)
        s.locals.append([float(acc.get(g.nodes[i].value, 0.0)) for i in s.inputs])
    s.flows = [flows.get(i) for i in s.inputs]


# --------------------------------------------------------------------------
# States: which calls are collapsed


def collapsed_scopes(g: Graph, collapse: bool | str | Iterable[str] | None) -> set[int]:
    """The scopes collapsed at first: all, none, those named, or chosen by :func:`auto_collapsed`.

    A call whose outputs flow back into it (possible with hand-made scopes)
    cannot be one unit; such calls stay expanded.
    """
    if collapse is None:
        return auto_collapsed(g)
    if collapse is True:
        wanted = {s.index for s in g.scopes}
    elif collapse is False:
        return set()
    else:
        names = {collapse} if isinstance(collapse, str) else set(collapse)
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"collapse names must be strings, not {type(name).__name__}")
        wanted = {s.index for s in g.scopes if s.name in names}
    try:
        units(g, wanted)
        return wanted
    except ValueError:  # keep the calls that can be collapsed together, outermost first
        kept: set[int] = set()
        for k in sorted(wanted, key=lambda k: (g.scopes[k].depth, k)):
            try:
                units(g, kept | {k})
                kept.add(k)
            except ValueError:
                pass
        return kept


def auto_collapsed(g: Graph, budget: int = AUTO_STEPS) -> set[int]:
    """Every call collapsed, then whole levels expanded, shallowest first, while the steps stay within ``budget``.

    A level is expanded only if all its calls fit; the first that does not stops it.
    """
    collapsed = {s.index for s in g.scopes}
    depth = 0
    while True:
        level = {s.index for s in g.scopes if s.depth == depth}
        if not level:
            return collapsed
        trial = collapsed - level
        try:
            size = len(walkthrough(g, trial))
        except ValueError:  # a state with a cycle cannot be stepped through
            return collapsed
        if size > budget:
            return collapsed
        collapsed = trial
        depth += 1


def _outermost(g: Graph, collapsed: set[int], node: int) -> int:
    """The outermost collapsed call around ``node`` (-1: none)."""
    for s in g.nodes[node].path:
        if s in collapsed:
            return s
    return -1


def drawn_count(g: Graph, collapsed: set[int]) -> int:
    """How many nodes the page draws in state ``collapsed``: values, ops and collapsed calls."""
    count = 0
    boxes: set[int] = set()
    for n in g.nodes:
        c = _outermost(g, collapsed, n.index)
        if c < 0:
            count += 2 if n.parents else 1
        elif n.index in g.scopes[c].outputs:
            count += 1
            boxes.add(c)
    return count + len(boxes)


def units(g: Graph, collapsed: set[int]) -> list[Unit]:
    """What the walk-through steps through in state ``collapsed``, in backward order.

    A node outside every collapsed call is a unit; each outermost collapsed
    call is one unit.  The order is a topological order of the units (Kahn's,
    from the output, largest key first), which with nothing collapsed is the
    reverse of the nodes' order.  A state whose collapsed calls would make a
    cycle raises ``ValueError``.
    """
    found: list[Unit] = []
    by_scope: dict[int, Unit] = {}
    producer: dict[int, int] = {}
    for n in g.nodes:
        c = _outermost(g, collapsed, n.index)
        if c < 0:
            if n.parents:
                producer[n.index] = len(found)
                found.append(Unit(n.index, n.index, -1, list(n.parents), [n.index]))
        elif c not in by_scope:
            s = g.scopes[c]
            by_scope[c] = Unit(max(s.members), -1, c, list(s.inputs), list(s.outputs))
    for u in by_scope.values():
        for o in u.outputs:
            producer[o] = len(found)
        found.append(u)
    # Kahn's algorithm from the output: a unit is ready once every unit reading it is done
    readers: list[set[int]] = [set() for _ in found]
    for k, u in enumerate(found):
        for i in u.inputs:
            if i in producer:
                readers[producer[i]].add(k)
    waiting = [len(r) for r in readers]
    ready = [(-u.key, k) for k, u in enumerate(found) if waiting[k] == 0]
    heapq.heapify(ready)
    out: list[Unit] = []
    while ready:
        _, k = heapq.heappop(ready)
        out.append(found[k])
        for p in {producer[i] for i in found[k].inputs if i in producer}:
            waiting[p] -= 1
            if waiting[p] == 0:
                heapq.heappush(ready, (-found[p].key, p))
    if len(out) < len(found):
        raise ValueError("these collapsed calls feed each other: collapse fewer of them")
    return out


def walkthrough(g: Graph, collapsed: set[int]) -> list[Step]:
    """Every step in state ``collapsed``: forward units, the seed, then one backward step per edge."""
    order = units(g, collapsed)
    steps = [Step("forward", k + 1, len(order), unit=u) for k, u in enumerate(reversed(order))]
    steps.append(Step("seed", 1, 1))
    running: dict[int, list[float]] = {len(g.nodes) - 1: [g.upstream]}
    totals: dict[int, float] = {len(g.nodes) - 1: g.upstream}
    back: list[Step] = []
    for u in order:
        for slot, i in enumerate(u.inputs):
            if g.nodes[i].constant:
                continue
            if u.node >= 0:
                local = [g.nodes[u.node].locals[slot]]
                c = g.nodes[u.node].flows[slot]
            else:
                s = g.scopes[u.scope]
                k = s.inputs.index(i)
                local = [s.locals[j][k] for j in range(len(s.outputs))]
                c = s.flows[k]
            up = [totals.get(o, 0.0) for o in u.outputs]
            if c is not None:
                running.setdefault(i, []).append(c)
                totals[i] = c if i not in totals else totals[i] + c
            back.append(Step("backward", 0, 0, unit=u, input=i, upstream=up, local=local, contribution=c,
                             running=list(running.get(i, [])), total=totals.get(i, 0.0)))
    for k, st in enumerate(back):
        st.number, st.of = k + 1, len(back)
    return steps + back


def final_grads(g: Graph, collapsed: set[int]) -> dict[int, float]:
    """The gradient each node has at the end of the walk-through (non-constant nodes that receive one)."""
    out: dict[int, float] = {len(g.nodes) - 1: g.upstream}
    for st in walkthrough(g, collapsed):
        if st.kind == "backward" and st.contribution is not None:
            out[st.input] = st.total
    return out


def to_json(g: Graph) -> dict[str, Any]:
    """The numbers the page needs (non-finite floats as the strings ``inf``, ``-inf``, ``nan``)."""

    def num(x: float | None) -> Any:
        if x is None:
            return None
        return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))

    return {
        "upstream": num(g.upstream),
        "nodes": [
            {"name": n.name, "label": n.value.label, "kind": n.kind, "op": n.value.op, "symbol": n.symbol,
             "data": num(n.value.data), "grad": num(n.grad), "parents": n.parents,
             "locals": [num(d) for d in n.locals], "flows": [num(c) for c in n.flows], "path": n.path}
            for n in g.nodes
        ],
        "scopes": [
            {"name": s.name, "parent": s.parent, "depth": s.depth, "members": s.members, "inputs": s.inputs,
             "outputs": s.outputs, "locals": [[num(d) for d in row] for row in s.locals],
             "flows": [num(c) for c in s.flows]}
            for s in g.scopes
        ],
    }
