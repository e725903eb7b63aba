"""Hypothesis strategies for property-testing derivatives.

Needs the ``testing`` extra (``pip install microgrannd[testing]``).

* Numbers for the usual domains: :func:`reals`, :func:`positive`,
  :func:`away_from_zero`, :func:`constants`, and :func:`inputs` for a tuple of
  them.  None of them produces NaN, infinities or subnormals.
* :func:`expressions`: random expression trees over the primitive table and
  the composites, with variables ``x0, x1, ...`` as leaves.  Each example is
  an :class:`Expression`, generated together with a point (``expr.point``)
  at which every operation is inside its domain with a margin; it prints as
  source (``tanh(x0 * 2.5)``) and is callable on Values and on floats.
* :func:`dags`: expressions in which later nodes reuse earlier ones, which
  exercise gradient accumulation and the order of the backward pass.

The operations are read from :data:`microgrannd.PRIMITIVES` at every draw:
a primitive added to the table is generated without changes here.  Each
primitive's ``arity``, ``constant_args`` and ``valid`` predicate are used:
constant inputs (such as ``pow``'s exponent) are drawn from
:func:`constants`; an operand that is outside the domain, too close to its
edge, or where the operation is too steep, is shifted by a constant
(``log(x0 + 1.5)``).  Points are chosen with the domain (``valid``) and the
forward functions alone, never with a derivative rule: a rule that is wrong
for ``x < 0`` meets inputs below zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from microgrannd.engine import Value
from microgrannd.functions import apply, leaky_relu, sigmoid
from microgrannd.ops import EXP, LOG, POW, PRIMITIVES, RECIPROCAL, DomainError, Primitive

__all__ = [
    "Const",
    "Expression",
    "Node",
    "Operation",
    "away_from_zero",
    "constants",
    "dags",
    "expressions",
    "inputs",
    "operations",
    "positive",
    "primitive_inputs",
    "reals",
]

# Guards applied to every operation at the generated point.
MARGIN = 0.05  # an operand may move by this much (times max(1, |x|)) and stay valid
MAX_SLOPE = 1e3  # bound on slopes of the forward functions (by finite differences)
MAX_VALUE = 1e4  # bound on every intermediate value
_SHIFT_TARGETS = (1.0, 0.5, -1.0, 2.0, -0.5, 1.5, -2.0)


# --------------------------------------------------------------------------
# Numbers


def reals(min_value: float = -10.0, max_value: float = 10.0) -> st.SearchStrategy[float]:
    """Finite floats in ``[min_value, max_value]`` (no NaN, inf or subnormals)."""
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def positive(min_value: float = 0.01, max_value: float = 10.0) -> st.SearchStrategy[float]:
    """Floats in ``[min_value, max_value]``, ``min_value > 0``: the domain of ``log``."""
    if min_value <= 0:
        raise ValueError("positive() needs min_value > 0")
    return reals(min_value, max_value)


def away_from_zero(min_magnitude: float = 0.1, max_magnitude: float = 10.0) -> st.SearchStrategy[float]:
    """Floats with ``min_magnitude <= |x| <= max_magnitude``, either sign."""
    magnitude = reals(min_magnitude, max_magnitude)
    return st.tuples(st.booleans(), magnitude).map(lambda t: -t[1] if t[0] else t[1])


def constants(limit: float = 3.0) -> st.SearchStrategy[float]:
    """Short decimal constants in ``[-limit, limit]`` (one decimal: ``2.5``, ``-0.3``)."""
    n = round(limit * 10)
    return st.integers(-n, n).map(lambda k: k / 10)


def inputs(n: int, elements: st.SearchStrategy[float] | None = None) -> st.SearchStrategy[tuple[float, ...]]:
    """Tuples of ``n`` numbers (by default :func:`reals` in ``[-3, 3]``)."""
    element = reals(-3.0, 3.0) if elements is None else elements
    return st.tuples(*[element] * n)


# --------------------------------------------------------------------------
# Operations: the primitive table plus the composites


@dataclass(frozen=True)
class Operation:
    """Something an expression node can apply: a primitive or a composite.

    ``call`` accepts Values or floats (mixing them is fine); ``valid`` and
    ``derivatives`` are the primitive's (``None`` for composites, whose
    domains are those of the primitives they are made of).  The strategies
    choose points with ``valid`` and ``call`` only, never with
    ``derivatives``.  ``template``
    shows how the node prints: ``"{0} + {1}"``, or ``None`` for a call
    ``name(args)``; ``precedence`` is used to parenthesise.
    """

    name: str
    arity: int
    call: Callable[..., Any]
    constant_args: tuple[int, ...] = ()
    valid: Callable[..., bool] | None = None
    derivatives: Callable[..., tuple[Any, ...]] | None = None
    template: str | None = None
    precedence: int = 5


# How the operators print; (template, precedence, minimum precedence of each
# operand).  Any other primitive prints as a call, name(args).
_INFIX: dict[str, tuple[str, int, tuple[int, int]]] = {
    "add": ("{0} + {1}", 1, (1, 2)),
    "sub": ("{0} - {1}", 1, (1, 2)),
    "mul": ("{0} * {1}", 2, (2, 3)),
    "div": ("{0} / {1}", 2, (2, 3)),
    "neg": ("-{0}", 3, (3, 3)),
    "pow": ("{0} ** {1}", 4, (5, 3)),
    "power": ("{0} ** {1}", 4, (5, 3)),
}


def _from_primitive(p: Primitive) -> Operation:
    template, precedence, _ = _INFIX.get(p.name, (None, 5, (0, 0)))
    return Operation(
        p.name,
        p.arity,
        lambda *args: apply(p, *args),
        p.constant_args,
        p.valid,
        p.derivatives,
        template,
        precedence,
    )


def _divide(a: Any, b: Any) -> Any:
    # the same arithmetic for floats and Values: a * reciprocal(b)
    if isinstance(a, Value) or isinstance(b, Value):
        return a / b
    return a * apply(RECIPROCAL, b)


class _Literal(float):
    """A constant operand as Expression passes it: printed ``x ** 2.5`` is the primitive pow."""


def _power(a: Any, b: Any) -> Any:
    # A Value exponent: the engine's composite exp(b * log(a)); on floats the
    # same arithmetic.  A literal exponent: what the printed source does, ``pow``.
    if isinstance(b, _Literal):
        return a ** float(b) if isinstance(a, Value) else apply(POW, a, float(b))
    if isinstance(b, Value):
        return a ** b
    return apply(EXP, b * apply(LOG, a))


def _composites() -> list[Operation]:
    return [
        Operation("sub", 2, lambda a, b: a - b, template="{0} - {1}", precedence=1),
        Operation("div", 2, _divide, template="{0} / {1}", precedence=2),
        Operation("neg", 1, lambda a: -a, template="-{0}", precedence=3),
        Operation("power", 2, _power, valid=lambda a, b: a > 0, template="{0} ** {1}", precedence=4),
        Operation("sigmoid", 1, sigmoid),
        Operation("leaky_relu", 1, leaky_relu),
    ]


def _focus(ops: Sequence[Operation], focus: str | None) -> Operation | None:
    if focus is None:
        return None
    for op in ops:
        if op.name == focus:
            return op
    if focus in PRIMITIVES:
        return _from_primitive(PRIMITIVES[focus])
    raise ValueError(f"focus: no operation named {focus!r}")


def _draw_operation(draw: st.DrawFn, ops: Sequence[Operation], focus: Operation | None) -> Operation:
    """An operation: ``focus`` half of the time (if given), otherwise any of ``ops``."""
    if focus is not None and draw(st.booleans()):
        return focus
    return draw(st.sampled_from(ops))


def operations(primitives: Sequence[str] | None = None, composites: bool = True) -> list[Operation]:
    """The operations expressions are built from, read from the table now.

    ``primitives`` restricts the primitives by name (default: every
    differentiable entry of :data:`~microgrannd.PRIMITIVES` of a fixed arity:
    not ``gather``); ``composites`` adds subtraction,
    division, negation, ``Value ** Value``, ``sigmoid`` and ``leaky_relu``.
    """
    names = ([n for n, p in PRIMITIVES.items() if p.differentiable and p.arity >= 0] if primitives is None
             else list(primitives))
    ops = [_from_primitive(PRIMITIVES[n]) for n in names]
    if composites:
        ops += _composites()
    return ops


# --------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True)
class Const:
    """A constant operand (printed as a number, never differentiated)."""

    value: float


@dataclass(frozen=True)
class Node:
    """``op`` applied to ``args``: indices of earlier nodes, or constants."""

    op: Operation
    args: tuple[int | Const, ...]


@dataclass
class Expression:
    """A function of ``variables`` inputs, as a list of nodes.

    Nodes ``0 .. variables-1`` are the inputs ``x0, x1, ...``; every further
    node applies an operation to earlier nodes; the last node is the output.
    ``point`` holds input values at which every operation is inside its
    domain with a margin.  Call it with Values (to build a graph) or floats.
    """

    variables: int
    nodes: list[Node] = field(default_factory=list)
    point: tuple[float, ...] = ()

    def __call__(self, *args: Any) -> Any:
        if len(args) != self.variables:
            raise TypeError(f"expression takes {self.variables} inputs, got {len(args)}")
        values: list[Any] = list(args)
        for node in self.nodes:
            operands = [_Literal(a.value) if isinstance(a, Const) else values[a] for a in node.args]
            values.append(node.op.call(*operands))
        return values[-1]

    @property
    def output(self) -> int:
        """Index of the output node."""
        return self.variables + len(self.nodes) - 1

    def node(self, index: int) -> Node:
        """The node with this index (``index >= variables``)."""
        return self.nodes[index - self.variables]

    @property
    def ops_used(self) -> set[str]:
        """Names of the operations that appear in the expression."""
        return {n.op.name for n in self.nodes}

    def _uses(self) -> dict[int, int]:
        uses: dict[int, int] = {}
        for n in self.nodes:
            for a in n.args:
                if isinstance(a, int):
                    uses[a] = uses.get(a, 0) + 1
        return uses

    def _render(self) -> tuple[list[str], str]:
        uses = self._uses()
        text: dict[int, tuple[str, int]] = {i: (f"x{i}", 5) for i in range(self.variables)}
        lines: list[str] = []
        for k, n in enumerate(self.nodes):
            index = self.variables + k
            parts = []
            _, _, needs = _INFIX.get(n.op.name, (None, 5, (0, 0)))
            for j, a in enumerate(n.args):
                if isinstance(a, Const):
                    s, prec = repr(a.value), (3 if a.value < 0 else 5)
                else:
                    s, prec = text[a]
                if n.op.template is not None and prec < needs[min(j, len(needs) - 1)]:
                    s = f"({s})"
                parts.append(s)
            src = n.op.template.format(*parts) if n.op.template is not None else f"{n.op.name}({', '.join(parts)})"
            if uses.get(index, 0) > 1 and index != self.output:
                lines.append(f"v{index} = {src}")
                text[index] = (f"v{index}", 5)
            else:
                text[index] = (src, n.op.precedence)
        return lines, text[self.output][0]

    @property
    def source(self) -> str:
        """Python source: one expression for a tree; assignments then the output for a DAG."""
        lines, last = self._render()
        return "\n".join([*lines, last])

    def namespace(self) -> dict[str, Any]:
        """Names the source needs (the operations that print as calls)."""
        return {n.op.name: n.op.call for n in self.nodes if n.op.template is None}

    def evaluate_source(self, *args: Any) -> Any:
        """Run :attr:`source` with ``x0, x1, ...`` bound to ``args``."""
        scope: dict[str, Any] = self.namespace()
        scope.update({f"x{i}": a for i, a in enumerate(args)})
        lines, last = self._render()
        for line in lines:
            exec(line, scope)
        return eval(last, scope)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"Expression({self.source!r}, point={self.point!r})"


# --------------------------------------------------------------------------
# Generation


def _float_call(op: Operation, args: Sequence[float]) -> float | None:
    """``op`` on floats, or None if it is undefined or not a finite number."""
    if op.valid is not None and not op.valid(*args):
        return None
    try:
        y = op.call(*args)
    except (DomainError, ArithmeticError, ValueError, TypeError):
        return None
    if not isinstance(y, float) or not math.isfinite(y) or abs(y) > MAX_VALUE:
        return None
    return y


def _steep(op: Operation, args: Sequence[float], y: float) -> bool:
    """Is ``op`` steeper than ``MAX_SLOPE`` at ``args``, by central differences of its forward function?

    The derivative rule is never consulted: points are chosen by the domain
    and the forward function alone, so a rule that is wrong somewhere (NaN
    for ``x < 0``, say) is tested there too.
    """
    for j, x in enumerate(args):
        if j in op.constant_args:
            continue
        delta = 1e-6 * max(1.0, abs(x))
        sides = []
        for k in (-1.0, 1.0):
            probe = list(args)
            probe[j] = x + k * delta
            z = _float_call(op, probe)
            if z is None:
                return True
            sides.append((probe[j], z))
        (x0, y0), (x1, y1) = sides
        if not abs(y1 - y0) <= MAX_SLOPE * (x1 - x0):
            return True
    return False


def _kink_at(op: Operation, args: Sequence[float], position: int, y: float) -> bool:
    """Do the one-sided slopes of ``op`` at operand ``position`` differ (``relu`` at 0)?

    At such a point the engine uses a one-sided derivative, which can be right
    for the operation and still wrong for the expression (``relu(x * x)`` at
    0 has second derivative 2, the engine says 0), so expressions avoid it.
    """
    x = args[position]
    delta = 1e-6 * max(1.0, abs(x))
    sides = []
    for k in (-1.0, 1.0):
        probe = list(args)
        probe[position] = x + k * delta
        z = _float_call(op, probe)
        if z is None:
            return True
        sides.append((z - y) / (probe[position] - x))
    left, right = sides
    return abs(left - right) > 1e-3 * max(1.0, abs(left), abs(right))


def _safe_at(op: Operation, args: Sequence[float], position: int) -> bool:
    """Is ``op`` defined and tame while operand ``position`` moves by the margin?"""
    x = args[position]
    center = _float_call(op, args)
    if center is None or _kink_at(op, args, position, center):
        return False
    m = MARGIN * max(1.0, abs(x))
    previous: tuple[float, float] | None = None
    for k in (-1.0, -0.5, 0.0, 0.5, 1.0):
        probe = list(args)
        probe[position] = x + k * m
        y = _float_call(op, probe)
        if y is None or _steep(op, probe, y):
            return False
        if previous is not None and abs(y - previous[1]) > MAX_SLOPE * abs(probe[position] - previous[0]):
            return False
        previous = (probe[position], y)
    return True


class _Builder:
    """Appends nodes to an expression, keeping every operation in its domain."""

    def __init__(self, point: Sequence[float]) -> None:
        self.expr = Expression(len(point), [], tuple(point))
        self.values: list[float] = list(point)
        self.add = _from_primitive(PRIMITIVES["add"])

    def value(self, a: int | Const) -> float:
        return _Literal(a.value) if isinstance(a, Const) else self.values[a]

    def _append(self, op: Operation, args: tuple[int | Const, ...], y: float) -> int:
        self.expr.nodes.append(Node(op, args))
        self.values.append(y)
        return len(self.values) - 1

    def _shifted(self, a: int | Const, target: float) -> tuple[int | Const, float] | None:
        if isinstance(a, Const):
            return Const(target), target
        c = round(target - self.values[a], 1)
        y = _float_call(self.add, [self.values[a], c])
        if y is None:
            return None
        return self._append(self.add, (a, Const(c)), y), y

    def apply(self, op: Operation, args: list[int | Const]) -> int | Const:
        """Append ``op(args)``, shifting operands into its domain; return the new node.

        If no shift helps, the operation is left out and its first operand
        returned instead.
        """
        for position in range(op.arity):
            if position in op.constant_args:
                continue
            vals = [self.value(a) for a in args]
            if _safe_at(op, vals, position):
                continue
            for target in _SHIFT_TARGETS:
                trial = list(vals)
                if isinstance(args[position], Const):
                    trial[position] = target
                else:
                    trial[position] = vals[position] + round(target - vals[position], 1)
                if _safe_at(op, trial, position):
                    shifted = self._shifted(args[position], target)
                    if shifted is not None:
                        args[position] = shifted[0]
                        break
        vals = [self.value(a) for a in args]
        y = _float_call(op, vals)
        safe = y is not None and all(
            _safe_at(op, vals, p) for p in range(op.arity) if p not in op.constant_args
        )
        if y is None or not safe:
            return next(a for i, a in enumerate(args) if i not in op.constant_args)
        return self._append(op, tuple(args), y)


def _finish(builder: _Builder, result: int | Const) -> Expression:
    expr = builder.expr
    if isinstance(result, Const) or result != expr.output or not expr.nodes:
        # the output must be the last node: add a final node if needed
        zero = Const(0.0)
        y = builder.value(result) + 0.0
        builder._append(builder.add, (result, zero), y)
    # drop the nodes the output does not depend on, renumbering the rest
    n = expr.variables
    needed = {expr.output}
    for index in range(expr.output, n - 1, -1):
        if index in needed:
            needed.update(a for a in expr.node(index).args if isinstance(a, int))
    renumber = {i: i for i in range(n)}
    kept: list[Node] = []
    for index, node in enumerate(expr.nodes, start=n):
        if index in needed:
            renumber[index] = n + len(kept)
            kept.append(Node(node.op, tuple(a if isinstance(a, Const) else renumber[a] for a in node.args)))
    return Expression(n, kept, expr.point)


@st.composite
def expressions(
    draw: st.DrawFn,
    variables: int = 2,
    max_depth: int = 4,
    values: st.SearchStrategy[float] | None = None,
    primitives: Sequence[str] | None = None,
    composites: bool = True,
    focus: str | None = None,
) -> Expression:
    """Random expression trees over ``variables`` inputs, with a valid point.

    ``max_depth`` bounds the nesting; ``values`` draws the point's
    coordinates (default :func:`reals` in ``[-3, 3]``); ``primitives`` and
    ``composites`` select the operations (see :func:`operations`).  With
    ``focus`` (an operation's name) about half of the nodes apply that
    operation, and every expression applies it at least once.  Use it as
    ``check_grad(expr, expr.point)``.
    """
    ops = operations(primitives, composites)
    focused = _focus(ops, focus)
    point = draw(inputs(variables, values))
    builder = _Builder(point)

    def grow(depth: int) -> int | Const:
        if depth >= max_depth or draw(st.integers(0, 3)) == 0:
            if variables and draw(st.integers(0, 4)) != 0:
                return draw(st.integers(0, variables - 1))
            return Const(draw(constants()))
        op = _draw_operation(draw, ops, focused)
        args: list[int | Const] = []
        for k in range(op.arity):
            args.append(Const(draw(constants())) if k in op.constant_args else grow(depth + 1))
        free = [k for k in range(op.arity) if k not in op.constant_args]
        if variables and free and all(isinstance(args[k], Const) for k in free):
            # no constant-only subtrees: every node depends on an input
            args[free[0]] = draw(st.integers(0, variables - 1))
        return builder.apply(op, args)

    expr = _finish(builder, grow(0))
    if focus is not None:
        assume(focus in expr.ops_used)
    return expr


@st.composite
def dags(
    draw: st.DrawFn,
    variables: int = 2,
    max_nodes: int = 8,
    values: st.SearchStrategy[float] | None = None,
    primitives: Sequence[str] | None = None,
    composites: bool = True,
    focus: str | None = None,
) -> Expression:
    """Random expressions whose nodes may be used many times (a DAG).

    Each new node applies an operation to any earlier nodes (inputs included),
    so values are shared and gradients must accumulate over several paths in
    the right order.  The last node is the output.  The parameters are those
    of :func:`expressions`.
    """
    ops = operations(primitives, composites)
    focused = _focus(ops, focus)
    point = draw(inputs(variables, values))
    builder = _Builder(point)
    size = draw(st.integers(1, max_nodes))
    result: int | Const = 0
    used: set[int | Const] = set()
    for _ in range(size):
        op = _draw_operation(draw, ops, focused)
        available = len(builder.values)
        args: list[int | Const] = []
        for k in range(op.arity):
            if k in op.constant_args or draw(st.integers(0, 5)) == 0:
                args.append(Const(draw(constants())))
            else:
                how = draw(st.integers(0, 2))
                unused = [i for i in range(builder.expr.variables, available) if i not in used]
                if how == 0 or (how == 1 and not unused):
                    # the newest node: chains grow deep
                    args.append(available - 1)
                elif how == 1:
                    # a node nothing uses yet: the output comes to depend on most nodes
                    args.append(draw(st.sampled_from(unused)))
                else:
                    # any earlier node: values shared along paths of different lengths
                    args.append(draw(st.sampled_from(range(available))))
                used.add(args[-1])
        free = [k for k in range(op.arity) if k not in op.constant_args]
        if free and all(isinstance(args[k], Const) for k in free):
            args[free[0]] = available - 1  # no constant-only nodes
        result = builder.apply(op, args)
    expr = _finish(builder, result)
    if focus is not None:
        assume(focus in expr.ops_used)
    return expr


@st.composite
def primitive_inputs(
    draw: st.DrawFn, prim: Primitive, values: st.SearchStrategy[float] | None = None
) -> tuple[float, ...]:
    """Inputs for one primitive, inside its domain with a margin.

    Constant inputs come from :func:`constants`, the others from ``values``
    (default :func:`reals` in ``[-5, 5]``); an operand outside the domain is
    replaced by its negation, then by ``|x| + 0.2``, then by 1.0; if none
    fits, the example is rejected.
    """
    element = reals(-5.0, 5.0) if values is None else values
    op = _from_primitive(prim)
    args = [draw(constants()) if k in prim.constant_args else draw(element) for k in range(prim.arity)]
    for position in range(prim.arity):
        if position in prim.constant_args:
            continue
        x = args[position]
        for candidate in (x, -x, abs(x) + 0.2, 1.0):
            args[position] = candidate
            if _safe_at(op, args, position):
                break
    free = [p for p in range(prim.arity) if p not in prim.constant_args]
    assume(all(_safe_at(op, args, p) for p in free))
    return tuple(args)
