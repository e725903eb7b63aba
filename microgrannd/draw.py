"""Drawing a graph with graphviz: values, ops, composite clusters, the backward view.

``draw(root)`` returns a :class:`Drawing`, a thin object around a
``graphviz.Digraph``: Jupyter shows it inline as SVG (or, with no renderer
installed, as the text tree of :func:`~microgrannd.tree` and how to get a
renderer),
``.source`` is the DOT text and ``.render("graph.svg")`` writes a picture in
the format named by the extension (``.dot`` needs no renderer).

What the picture shows:

* every :class:`~microgrannd.Value` as a box with its label (if any), data
  and grad; before any backward pass the grad reads ``grad ?`` (not
  computed), never a zero that looks real;
* every operation as a small circle with its symbol (``+``, ``×``, ``exp``,
  ``1/x``, ``^2``...), one edge per parent slot in order (``x * x`` draws two
  edges); a constant exponent is shown in the symbol (``^2``);
* constants (leaves that take no gradient) as dashed grey boxes; inputs,
  parameters and the output in distinct colours (``legend=True`` explains).
  Parameters are the leaves given as ``params`` and the weights and biases
  of :mod:`microgrannd.nn` neurons; the other leaves are inputs (see
  :func:`draw` for ``inputs`` and ``params``);
* every composite call (``sigmoid``, ``sub``, ``div``, your ``@composite``
  functions) as a labelled cluster around the nodes it created; nested calls
  nest.  An unlabelled constant whose every use lies inside one call (the
  ``-1`` and ``1`` of sigmoid) is drawn inside that call's cluster.
  ``collapse=True`` (or a name, or names) draws each such call as one node.

With ``backward=True`` every edge is labelled with its local derivative and
the gradient flowing back along it, for the upstream gradient ``upstream``
(computed with :func:`~microgrannd.gradients`; no ``grad`` field is touched).

The DOT text is deterministic: node names come from positions in the
topological order and clusters are numbered by first appearance.  Every walk
is iterative.  Graphs with more than ``max_nodes`` values raise
:class:`GraphTooLargeError` rather than hanging the renderer.
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphviz

from microgrannd._view import (
    Formatter,
    common_prefix,
    drawn_consumers,
    drawn_nodes,
    drawn_slots,
    formatter,
    grad_float,
    grads_computed,
    is_constant,
    op_symbol,
)
from microgrannd.engine import Value
from microgrannd.modes import Scope
from microgrannd.render import RendererNotFoundError, RenderError, render_source, write_picture
from microgrannd.tree import tree
from microgrannd.walk import backprop, count_nodes, gradients, local_derivatives, vjp

if TYPE_CHECKING:
    from microgrannd.nn.module import Module

__all__ = ["DEFAULT_MAX_NODES", "Drawing", "GraphTooLargeError", "draw"]

DEFAULT_MAX_NODES = 300
#: How far a refused graph is counted for the error message (a bigger one is "more than" this).
COUNT_CAP = 10_000

KIND_COLORS = {
    "input": "#cfe2ff",
    "parameter": "#ffe0b3",
    "variable": "#e8e8f4",
    "intermediate": "#ffffff",
    "output": "#c8f0c0",
    "constant": "#f2f2f2",
}
OP_COLOR = "#eeeeee"
CALL_COLOR = "#e6dcf5"
BACKWARD_COLOR = "#b03a2e"
CLUSTER_COLORS = ("#f7f7fc", "#eef3fa", "#f9f4ea")
RANKDIRS = ("LR", "TB", "RL", "BT")

Key = tuple[int, ...]  # a placement: the ids of the enclosing composite calls, outermost first


class GraphTooLargeError(ValueError):
    """The graph has more nodes than the drawing's ``max_nodes``.

    Attributes:
        count: how many values the drawing would show; when ``exact`` is
            False, counting stopped there (at :data:`COUNT_CAP` + 1) and the
            graph has more.
        max_nodes: the limit it was given.
        exact: whether ``count`` is the whole count.
    """

    def __init__(self, message: str, *, count: int, max_nodes: int, exact: bool = True) -> None:
        super().__init__(message)
        self.count = count
        self.max_nodes = max_nodes
        self.exact = exact


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _collapse_rule(collapse: bool | str | Iterable[str]) -> Callable[[str], bool]:
    if collapse is True:
        return lambda name: True
    if collapse is False or collapse is None:
        return lambda name: False
    names = {collapse} if isinstance(collapse, str) else set(collapse)
    return lambda name: name in names


class Drawing:
    """A drawn graph: a ``graphviz.Digraph`` plus rendering that finds its renderer.

    Attributes:
        graph: the ``graphviz.Digraph`` (add attributes to it if you like).
        values, ops, calls, clusters: how many of each the picture shows.
    """

    def __init__(
        self,
        graph: graphviz.Digraph,
        *,
        values: int,
        ops: int,
        calls: int,
        clusters: int,
        text: Callable[[], str] | None = None,
    ) -> None:
        self.graph = graph
        self.values = values
        self.ops = ops
        self.calls = calls
        self.clusters = clusters
        self._text = text
        self._svg: str | None = None

    @property
    def source(self) -> str:
        """The DOT text."""
        return str(self.graph.source)

    def pipe(self, fmt: str = "svg") -> bytes:
        """The picture as bytes in format ``fmt`` (needs a renderer, see :mod:`microgrannd.render`)."""
        return render_source(self.source, fmt)

    def svg(self) -> str:
        """The picture as SVG text (rendered once, then cached)."""
        if self._svg is None:
            self._svg = self.pipe("svg").decode("utf-8")
        return self._svg

    def render(self, path: str | os.PathLike[str], fmt: str | None = None) -> Path:
        """Write the picture to ``path``; the format is ``fmt`` or the extension.

        ``.dot``/``.gv`` write the DOT text and need no renderer.  With no
        renderer, the ``.dot`` file is written next to ``path`` and
        :class:`~microgrannd.render.RendererNotFoundError` says how to get one.
        """
        return write_picture(self.source, path, fmt)

    def _fallback_text(self, error: Exception) -> str:
        """What a notebook shows without a picture: why, and the graph as a text tree."""
        if self._text is None:
            return f"{error}\n\nThe DOT source (paste it into any graphviz viewer):\n\n{self.source}"
        return f"{error}\n\nThe graph as a text tree (.source is the DOT text):\n\n{self._text()}"

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except (RendererNotFoundError, RenderError):
            return None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        try:
            return {"image/svg+xml": self.svg(), "text/plain": repr(self)}
        except (RendererNotFoundError, RenderError) as e:
            return {"text/plain": self._fallback_text(e)}

    def __repr__(self) -> str:
        counts = [(self.values, "value"), (self.ops, "op"), (self.calls, "collapsed call"), (self.clusters, "cluster")]
        shown = ", ".join(f"{n} {word}{'' if n == 1 else 's'}" for n, word in counts)
        return f"<Drawing: {shown}; .source is the DOT text, .render('graph.svg') writes a picture>"


class _Builder:
    """One drawing in the making (see :func:`draw` for the options)."""

    def __init__(
        self, root: Value, fmt: Formatter, grads: bool | str, backward: bool, upstream: float
    ) -> None:
        self.root = root
        self.f = fmt
        self.backward = backward
        self.upstream = upstream
        self.show_grads = grads is not False or backward
        self.computed = backward or grads is True or (grads == "auto" and grads_computed(root))
        self.grad_of: dict[Value, float] = gradients(root, upstream) if backward else {}
        self.kinds_used: dict[str, None] = {}
        self.names: dict[Value, str] = {}  # names given by a dict of inputs or params
        # placement tree: key -> node statements, child keys; key () is the top level
        self.members: dict[Key, list[tuple[str, dict[str, str]]]] = {(): []}
        self.children: dict[Key, list[Key]] = {(): []}
        self.cluster_names: dict[int, str] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []

    # --- placement

    def place(self, path: tuple[Scope, ...], name: str, attrs: dict[str, str]) -> None:
        key: Key = ()
        for s in path:
            child = (*key, s.id)
            if child not in self.members:
                self.members[child] = []
                self.children[child] = []
                self.children[key].append(child)
                self.cluster_names[s.id] = s.name
            key = child
        self.members[key].append((name, attrs))

    # --- what nodes look like

    def grad_text(self, v: Value) -> str | None:
        if not self.show_grads or is_constant(v):
            return None
        if not self.computed:
            return '<FONT COLOR="#888888"><I>grad ?</I></FONT>'
        g = self.grad_of.get(v, 0.0) if self.backward else grad_float(v.grad)
        return "grad " + html.escape(self.f(g))

    def value_attrs(self, v: Value, kind: str) -> dict[str, str]:
        self.kinds_used[kind] = None
        label = self.names.get(v) or v.label
        if kind == "constant":
            text = self.f(v.data) if not label else f"{label} = {self.f(v.data)}"
            return {"label": graphviz.escape(text), "shape": "box", "style": "rounded,dashed,filled",
                    "fillcolor": KIND_COLORS[kind], "color": "#888888", "fontcolor": "#555555",
                    "fontsize": "10", "tooltip": "constant"}
        rows = []
        if label:
            rows.append(f"<B>{html.escape(label)}</B>")
        rows.append("data " + html.escape(self.f(v.data)))
        g = self.grad_text(v)
        if g is not None:
            rows.append(g)
        cells = "".join(f"<TR><TD>{r}</TD></TR>" for r in rows)
        table = (f'<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3" '
                 f'BGCOLOR="{KIND_COLORS[kind]}">{cells}</TABLE>')
        return {"label": f"<{table}>", "shape": "plain", "tooltip": kind}

    def edge_attrs(self, parent: Value, label: str | None) -> dict[str, str]:
        attrs: dict[str, str] = {}
        if is_constant(parent):
            attrs.update(style="dashed", color="#999999")
        elif self.backward:
            attrs.update(dir="back", color=BACKWARD_COLOR, fontcolor=BACKWARD_COLOR, fontsize="10")
            if label is not None:
                attrs["label"] = label
        return attrs

    def flow_label(self, local: float | None, flow: float) -> str:
        if local is None:
            return f"grad {self.f(flow)}"
        return f"local {self.f(local)}\\ngrad {self.f(flow)}"


class _Layout:
    """What to draw: the nodes, where each sits, and which calls are collapsed.

    A parameter whose every use lies inside collapsed calls is hidden with
    them (a layer's weights inside its box); ``hidden_params`` counts them
    per call.
    """

    def __init__(self, root: Value, collapse: bool | str | Iterable[str],
                 is_param: Callable[[Value], bool] = lambda v: False) -> None:
        self.root = root
        self.is_param = is_param
        self.nodes = drawn_nodes(root)
        self.index = {v: i for i, v in enumerate(self.nodes)}
        self.consumers = drawn_consumers(self.nodes)
        # where each node sits: its composite calls, outermost first
        self.path: dict[Value, tuple[Scope, ...]] = {}
        for v in reversed(self.nodes):  # consumers before their parents
            if is_constant(v) and not v.label and v in self.consumers:
                self.path[v] = common_prefix([self.path[c] for c in self.consumers[v]])
            else:
                self.path[v] = v.scope.path() if v.scope is not None else ()
        # collapsed calls: the outermost collapsed call around each node
        want = _collapse_rule(collapse)
        self.call_of: dict[Value, Scope] = {}
        self.call_base: dict[Scope, tuple[Scope, ...]] = {}
        self.call_members: dict[Scope, list[Value]] = {}
        for v in self.nodes:
            for k, s in enumerate(self.path[v]):
                if want(s.name):
                    self.call_of[v] = s
                    self.call_base[s] = self.path[v][:k]
                    self.call_members.setdefault(s, []).append(v)
                    break
        self.hidden_params: dict[Scope, int] = {}
        if self.call_of:
            for v in self.nodes:
                if not v.parents and not self.visible(v) and v not in self.call_of:
                    for c in dict.fromkeys(self.call_of[u] for u in self.consumers[v]):
                        self.hidden_params[c] = self.hidden_params.get(c, 0) + 1

    def visible(self, v: Value) -> bool:
        """Not hidden inside a collapsed call (a call's outputs stay visible).

        A parameter used only inside collapsed calls is hidden with them.
        """
        if v is self.root:
            return True
        c = self.call_of.get(v)
        if c is None:
            uses = self.consumers.get(v)
            return not (uses and self.call_of and self.is_param(v) and all(u in self.call_of for u in uses))
        return any(self.call_of.get(u) is not c for u in self.consumers.get(v, ()))

    def vid(self, v: Value) -> str:
        """The DOT name of value ``v``: its position in the topological order."""
        return f"v{self.index[v]}"


def draw(
    root: Value,
    *,
    rankdir: str = "LR",
    grads: bool | str = "auto",
    fmt: str | Formatter = ".4g",
    collapse: bool | str | Iterable[str] = False,
    max_nodes: int = DEFAULT_MAX_NODES,
    inputs: Value | Iterable[Value] | Mapping[str, Value] | Module = (),
    params: Value | Iterable[Value] | Mapping[str, Value] | Module = (),
    legend: bool = False,
    backward: bool = False,
    upstream: float = 1.0,
) -> Drawing:
    """Draw the graph that ``root`` depends on; return a :class:`Drawing`.

    Args:
        root: the output node.
        rankdir: ``"LR"`` (left to right, the default), ``"TB"``, ``"RL"`` or ``"BT"``.
        grads: ``"auto"`` (default) shows the ``grad`` fields once a backward
            pass has reached ``root`` (its grad is no longer 0.0) and
            ``grad ?`` before; ``True`` always shows the fields; ``False``
            hides gradients.
        fmt: a format spec for numbers (default ``".4g"``) or a function float -> str.
        collapse: ``True`` draws every composite call as one node; a name or
            an iterable of names collapses only calls of those composites.
        max_nodes: the most values to draw; more raise :class:`GraphTooLargeError`.
        inputs, params: leaves to colour as inputs or parameters: Values, a
            dict ``{name: Value}`` (the picture names each by its key), or a
            module of :mod:`microgrannd.nn` (its ``parameters()``).  The
            weights and biases of every ``nn`` neuron are parameters unless
            given as ``inputs``.  Of the other variable leaves: with neither
            argument given they are inputs; with only one given they are of
            the other kind; with both, plain variables.
        legend: add a legend of the colours and shapes used.
        backward: the backward view: gradients of ``root`` seeded with
            ``upstream``, and on each edge the local derivative and the
            gradient flowing back along it.
        upstream: the seed gradient of the backward view (d loss / d root).
    """
    if not isinstance(root, Value):
        raise TypeError(f"draw() needs a Value, not {type(root).__name__}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}")
    if grads not in (True, False, "auto"):
        raise ValueError(f"grads must be True, False or 'auto', not {grads!r}")
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be positive, not {max_nodes}")
    input_names = _leaves(inputs, "inputs")
    param_names = _leaves(params, "params")
    f = formatter(fmt)
    model: list[set[Value]] = []  # the nn parameters alive, looked up once, when a leaf needs them

    def kind(v: Value) -> str:
        if v is root:
            return "output"
        if is_constant(v):
            return "constant"
        if v.parents:
            return "intermediate"
        if v in param_names:
            return "parameter"
        if v in input_names:
            return "input"
        if not model:
            model.append(_neuron_parameters())
        if v in model[0]:
            return "parameter"
        if param_names and input_names:
            return "variable"
        return "input" if not input_names else "parameter"

    def is_param(v: Value) -> bool:
        return kind(v) == "parameter"

    if count_nodes(root, max_nodes) > max_nodes:  # perhaps too large: count what would be shown
        count, names = _count_shown(root, _collapse_rule(collapse), is_param, max(max_nodes, COUNT_CAP))
        if count > max_nodes:
            raise _too_large(count, max_nodes, collapse, names)
    lay = _Layout(root, collapse, is_param)
    shown = [v for v in lay.nodes if lay.visible(v)]
    if len(shown) > max_nodes:  # (the count above is exact; this is a safety net)
        raise _too_large(len(shown), max_nodes, collapse, [])
    b = _Builder(root, f, grads, backward, float(upstream))
    b.names = {**input_names, **param_names}

    # nodes and edges, in topological order
    op_count = 0
    call_ids: dict[Scope, str] = {}
    for v in shown:
        c = lay.call_of.get(v)
        if c is not None:  # an output of a collapsed call
            b.place(lay.call_base[c], lay.vid(v), b.value_attrs(v, kind(v)))
            if c not in call_ids:
                call_ids[c] = _add_call(b, lay, c, f"c{len(call_ids)}")
            b.edges.append((call_ids[c], lay.vid(v), b.edge_attrs(v, None)))
            continue
        b.place(lay.path[v], lay.vid(v), b.value_attrs(v, kind(v)))
        if not v.parents:
            continue
        op_count += 1
        oid = f"o{lay.index[v]}"
        b.kinds_used["op"] = None
        b.place(lay.path[v], oid, {"label": graphviz.escape(op_symbol(v, f)), "shape": "circle",
                                   "style": "filled", "fillcolor": OP_COLOR, "fontsize": "11",
                                   "width": "0.3", "margin": "0.02", "ordering": "in", "tooltip": v.op})
        ds: tuple[Any, ...] = ()
        cs: tuple[Any, ...] | None = None
        if b.backward:
            ds = local_derivatives(v)
            cs = vjp(v, b.grad_of.get(v, 0.0))
        for i in drawn_slots(v):
            p = v.parents[i]
            label = b.flow_label(ds[i], 0.0 if cs is None else cs[i]) if b.backward else None
            b.edges.append((lay.vid(p), oid, b.edge_attrs(p, label)))
        b.edges.append((oid, lay.vid(v), b.edge_attrs(v, None)))

    graph = _emit(b, rankdir)
    if b.backward:
        graph.node("upstream", label=f"upstream\\n{graphviz.escape(f(b.upstream))}", shape="plaintext",
                   fontcolor=BACKWARD_COLOR, fontsize="10")
        graph.edge(lay.vid(root), "upstream", dir="back", color=BACKWARD_COLOR, fontcolor=BACKWARD_COLOR,
                   fontsize="10", label=f"grad {graphviz.escape(f(b.upstream))}")
    if legend:
        _add_legend(graph, b)
    return Drawing(graph, values=len(shown), ops=op_count, calls=len(call_ids), clusters=len(b.cluster_names),
                   text=lambda: tree(root, fmt=f, grads=grads))


def _leaves(given: Any, what: str) -> dict[Value, str]:
    """``inputs=`` or ``params=`` as ``{Value: name to show ("" for its own label)}``."""
    if isinstance(given, Value):
        return {given: ""}
    if isinstance(given, Mapping):
        pairs = [(v, str(k)) for k, v in given.items()]
    elif callable(getattr(given, "parameters", None)):  # an nn Module
        pairs = [(v, "") for v in given.parameters()]
    elif isinstance(given, str | bytes):
        raise TypeError(f"{what} must be Values, a dict of name -> Value or an nn Module, not a string")
    else:
        try:
            pairs = [(v, "") for v in given]
        except TypeError:
            raise TypeError(f"{what} must be Values, a dict of name -> Value or an nn Module, "
                            f"not {type(given).__name__}") from None
    for v, _ in pairs:
        if not isinstance(v, Value):
            raise TypeError(f"{what} must hold Values, not {type(v).__name__} ({v!r:.40})")
    return dict(pairs)


def _neuron_parameters() -> set[Value]:
    """The weights and biases of every :mod:`microgrannd.nn` neuron alive (none if nn is not in use)."""
    module = sys.modules.get("microgrannd.nn.module")
    return module.live_parameters() if module is not None else set()


def _count_shown(root: Value, want: Callable[[str], bool], is_param: Callable[[Value], bool],
                 limit: int) -> tuple[int, list[str]]:
    """How many values :func:`draw` would show, counting no further than ``limit + 1``; the call names seen.

    The rules of :meth:`_Layout.visible`, decided edge by edge as the walk
    meets them (a hidden node only ever becomes visible), so the walk stops
    as soon as the count passes ``limit``: refusing a huge graph costs
    ``O(limit)``.  Hidden nodes are walked without being counted.
    """
    outer: dict[Scope | None, Scope | None] = {None: None}  # scope -> its outermost collapsed call
    names: dict[str, None] = {}

    def call(s: Scope | None) -> Scope | None:
        if s not in outer:
            path = s.path()  # type: ignore[union-attr]
            names.update((t.name, None) for t in path)
            outer[s] = next((t for t in path if want(t.name)), None)
        return outer[s]

    shown = {root}
    first_use: dict[Value, Scope | None] = {}  # an unlabelled constant: the call of its first consumer
    reached = {root}
    stack = [root]
    while stack and len(shown) <= limit:
        u = stack.pop()
        cu = call(u.scope)
        for i in drawn_slots(u):
            p = u.parents[i]
            if p not in reached:
                reached.add(p)
                stack.append(p)
            if p in shown:
                continue
            if p.parents:
                cp = call(p.scope)
                visible = cp is None or cp is not cu
            elif is_constant(p) and not p.label:
                visible = cu is None or first_use.setdefault(p, cu) is not cu
            else:
                visible = cu is None or not is_param(p)
            if visible:
                shown.add(p)
    return min(len(shown), limit + 1), list(names)


def _too_large(count: int, max_nodes: int, collapse: Any, names: list[str]) -> GraphTooLargeError:
    """The refusal, with what would make the graph drawable (``names``: the calls the graph records)."""
    exact = count <= COUNT_CAP
    advice = ["draw a part of it (draw(v) for an intermediate value v)"]
    if collapse is not True:
        some = ", ".join(repr(n) for n in names[:6]) + (", ..." if len(names) > 6 else "")
        recorded = f" (this graph records calls of {some}; a network layer by layer: collapse='Layer')" if names else ""
        advice.append(f"draw composite calls as single nodes with collapse=True, or collapse=NAME for "
                      f"the calls of one name{recorded}")
    advice.append(f"raise the limit: draw(root, max_nodes={count})" if exact else "raise the limit (max_nodes=...)")
    size = f"{count:,}" if exact else f"more than {COUNT_CAP:,}"
    return GraphTooLargeError(
        f"the graph has {size} values to draw, more than max_nodes={max_nodes}: a picture that big cannot be "
        "read and would take the renderer minutes; " + ", or ".join(advice),
        count=count, max_nodes=max_nodes, exact=exact,
    )


def _add_call(b: _Builder, lay: _Layout, c: Scope, cid: str) -> str:
    """Draw collapsed call ``c`` as one node with edges from its inputs; return its name."""
    members = lay.call_members[c]
    b.kinds_used["call"] = None
    hidden = lay.hidden_params.get(c, 0)
    label = f"{c.name}\\n{hidden} parameter{'' if hidden == 1 else 's'}" if hidden else graphviz.escape(c.name)
    b.place(lay.call_base[c], cid, {"label": label, "shape": "box",
                                    "style": "rounded,filled,bold", "fillcolor": CALL_COLOR,
                                    "tooltip": f"composite call {c.name} (collapsed)"})
    # inputs in order of first use, and the gradient each receives through the call
    flows: dict[Value, float] = {}
    for u in members:
        slots = drawn_slots(u)
        if not slots:
            continue
        cs = vjp(u, b.grad_of.get(u, 0.0)) if b.backward else None
        for i in slots:
            p = u.parents[i]
            if lay.call_of.get(p) is not c and lay.visible(p):
                flows[p] = flows.get(p, 0.0) + (0.0 if cs is None else cs[i])
    outputs = [u for u in members if lay.visible(u)]
    locals_: dict[Value, float] = {}
    if b.backward and len(outputs) == 1:
        # d output / d input through the call's own nodes only
        acc = backprop(outputs[0], 1.0, order=[u for u in members if u.parents])
        locals_ = {p: acc.get(p, 0.0) for p in flows}
    for p, flow in flows.items():
        label = b.flow_label(locals_.get(p), flow) if b.backward else None
        b.edges.append((lay.vid(p), cid, b.edge_attrs(p, label)))
    return cid


def _emit(b: _Builder, rankdir: str) -> graphviz.Digraph:
    """The Digraph: placed nodes inside nested clusters (an explicit stack), then edges."""
    g = graphviz.Digraph("microgrannd")
    g.attr("graph", rankdir=rankdir, fontname="Helvetica", nodesep="0.25", ranksep="0.35")
    g.attr("node", fontname="Helvetica", fontsize="11")
    g.attr("edge", fontname="Helvetica", arrowsize="0.7")
    numbers: dict[Key, int] = {}
    stack: list[tuple[Key, bool]] = [((), True)]
    while stack:
        key, entering = stack.pop()
        if not entering:
            g.body.append("\t}\n")
            continue
        if key:
            numbers[key] = len(numbers)
            name = b.cluster_names[key[-1]]
            fill = CLUSTER_COLORS[(len(key) - 1) % len(CLUSTER_COLORS)]
            g.body.append(f"\tsubgraph cluster_{numbers[key]} {{\n")
            g.body.append(f"\t\tlabel={_q(name)} style=\"rounded,filled\" fillcolor={_q(fill)} "
                          f"color=\"#7a6fa8\" fontcolor=\"#4b3f86\" fontsize=11\n")
            stack.append((key, False))
        for name, attrs in b.members[key]:
            g.node(name, **attrs)
        for child in reversed(b.children[key]):
            stack.append((child, True))
    for tail, head, attrs in b.edges:
        g.edge(tail, head, **attrs)
    return g


LEGEND_TEXT = {
    "input": "input",
    "parameter": "parameter",
    "variable": "variable",
    "intermediate": "intermediate value",
    "output": "output",
    "constant": "constant (dashed box)",
    "op": "operation (circle)",
    "call": "composite call (collapsed)",
}


def _add_legend(g: graphviz.Digraph, b: _Builder) -> None:
    """One table node naming the colours and shapes the picture uses."""
    swatches = {**KIND_COLORS, "op": OP_COLOR, "call": CALL_COLOR}
    rows = [
        f'<TR><TD BGCOLOR="{swatches[kind]}" WIDTH="16"> </TD><TD BORDER="0" ALIGN="LEFT">{text}</TD></TR>'
        for kind, text in LEGEND_TEXT.items()
        if kind in b.kinds_used
    ]
    if b.show_grads and not b.computed:
        rows.append('<TR><TD BORDER="0"><FONT COLOR="#888888"><I>?</I></FONT></TD>'
                    '<TD BORDER="0" ALIGN="LEFT">grad not computed yet: call backward()</TD></TR>')
    table = ('<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="1" CELLSPACING="3" CELLPADDING="2">'
             '<TR><TD BORDER="0" COLSPAN="2"><B>legend</B></TD></TR>' + "".join(rows) + "</TABLE>")
    g.node("legend", label=f"<{table}>", shape="plain", fontsize="10")
