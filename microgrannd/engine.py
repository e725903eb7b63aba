"""The engine: :class:`Value` nodes and how operations record them.

A node is plain data: ``data`` (a float), ``grad`` (a float; a Value after
``backward(create_graph=True)``), ``op`` (the name of the primitive that made
it, ``""`` for a leaf), ``parents`` (an ordered tuple of Values, one slot per
input), ``label``, ``scope`` (the composite call that created it, if any) and
``requires_grad`` (``False`` for constants).  There are no per-node closures,
so a graph is freed by reference counting as soon as it is dropped.  Walks
over the graph (backward among them) live in :mod:`microgrannd.walk`; the
recording mode (scopes, ``no_grad``, tracing) in :mod:`microgrannd.modes`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from microgrannd import ops, walk
from microgrannd.modes import MODE, Scope, scope, trace_error
from microgrannd.ops import ABS, ADD, EXP, LOG, MUL, POW, PRIMITIVES, RECIPROCAL, RELU, SOFTPLUS, TANH, Primitive

__all__ = ["Value", "apply"]


def number(x: object, what: str) -> float:
    """``x`` as a float, or a TypeError / ValueError that names ``what`` (the one input policy).

    Real numbers (int, float, Fraction, numpy floats and ints) are accepted;
    ``bool`` is refused (``True`` is a truth value, not a number here), and so
    are an int too large for a float and anything that is not a real number.
    """
    if type(x) is float:
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        try:
            return float(x)
        except OverflowError:
            raise ValueError(f"{what} must fit in a float; {str(x)[:20]}... is too large") from None
    kind = "a truth value (bool)" if isinstance(x, bool) or type(x).__name__ == "bool_" else type(x).__name__
    raise TypeError(f"{what} must be a real number (int or float), not {kind}")


_new = object.__new__


def _node(cls: type, data: float, op: str, parents: tuple[Value, ...], scope: Scope | None,
          requires_grad: bool, label: str = "") -> Value:
    """The one constructor of nodes: leaves, constants and recorded operations."""
    v: Value = _new(cls)
    v.data = data
    v.grad = 0.0
    v.op = op
    v.parents = parents
    v.label = label
    v.scope = scope
    v.requires_grad = requires_grad
    v._mark = 0
    return v


def _constant(x: float) -> Value:
    return _node(Value, x, "", (), None, False)


def _operand(x: object) -> Value | None:
    """A Value for an operator's other operand, or None if it is not a number."""
    if isinstance(x, Value):
        return x
    if type(x) is float or type(x) is int or (isinstance(x, numbers.Real) and not isinstance(x, bool)):
        return _constant(number(x, "operand"))
    return None


def _record(prim: Primitive, data: float, parents: tuple[Value, ...]) -> Value:
    """A node holding ``data`` made by ``prim`` from ``parents`` (a constant under no_grad)."""
    mode = MODE.get()
    if mode.grad_enabled:
        return _node(mode.node_type or Value, data, prim.name, parents, mode.scope, True)
    return _node(mode.node_type or Value, data, "", (), None, False)


def _domain(prim: Primitive, *xs: float) -> None:
    if MODE.get().checked:  # inside a derivative rule a pole gives inf, as on floats
        prim.check(*xs)


def _binary(prim: Primitive, a: Value, b: Value) -> Value:
    """Record a two-input primitive (the hot path of ``+ * **``)."""
    x, y = a.data, b.data
    if prim.valid is not None and not prim.valid(x, y):
        _domain(prim, x, y)
    return _record(prim, prim.forward(x, y), (a, b))


def _unary(prim: Primitive, a: Value) -> Value:
    """Record a one-input primitive (relu, exp, log, tanh, ...)."""
    x = a.data
    if prim.valid is not None and not prim.valid(x):
        _domain(prim, x)
    return _record(prim, prim.forward(x), (a,))


def _apply_values(prim: Primitive, args: tuple[Any, ...]) -> Value:
    """Record ``prim`` on Values and plain numbers (turned into constants)."""
    nodes = []
    for a in args:
        node = _operand(a)
        if node is None:
            raise TypeError(f"{prim.name} input must be a Value or a real number, not {type(a).__name__}")
        nodes.append(node)
    if len(nodes) == 2:
        return _binary(prim, nodes[0], nodes[1])
    if len(nodes) == 1:
        return _unary(prim, nodes[0])
    xs = [v.data for v in nodes]
    if prim.valid is not None and not prim.valid(*xs):
        _domain(prim, *xs)
    return _record(prim, prim.forward(*xs), tuple(nodes))


ops._record = _apply_values  # rules call primitives on Values through this


def apply(prim: Primitive | str, *args: Any) -> Any:
    """Apply a primitive (or its name) to Values or plain numbers.

    With no Value among ``args`` the result is a plain float, computed by the
    same forward function (domain errors included); otherwise a new node is
    recorded.
    """
    if isinstance(prim, str):
        prim = PRIMITIVES[prim]
    if len(args) != prim.arity:
        raise TypeError(f"{prim.name} takes {prim.arity} inputs, got {len(args)}")
    for i in prim.constant_args:
        if isinstance(args[i], Value):
            raise TypeError(f"{prim.name}: input {i} must be a number, not a Value")
    if any(isinstance(a, Value) for a in args):
        return _apply_values(prim, args)
    xs = [number(a, f"{prim.name} input") for a in args]
    prim.check(*xs)
    return prim.forward(*xs)


class Value:
    """A scalar node of a computation graph.

    ``Value(data, label="")`` makes a leaf.  Arithmetic with Values and plain
    numbers (on either side) records new nodes; :meth:`backward` fills in
    ``grad`` on every node of the graph.  Equality and hashing are by identity.
    Comparisons and ``bool`` use ``data``; ``float(v)`` (and so ``math.exp(v)``)
    refuses a Value that records gradients, which would silently lose them:
    use ``mg.exp(v)``, or read ``v.data`` to leave the graph on purpose.
    """

    __slots__ = ("data", "grad", "op", "parents", "label", "scope", "requires_grad", "_mark")

    data: float
    grad: float | Value
    op: str
    parents: tuple[Value, ...]
    label: str
    scope: Scope | None
    requires_grad: bool
    _mark: int  # the last walk that visited this node (see microgrannd.walk)

    def __new__(cls, data: float, label: str = "", *, requires_grad: bool = True) -> Value:
        if not isinstance(label, str):
            raise TypeError(f"Value label must be a str, not {type(label).__name__}")
        return _node(cls, number(data, "Value data"), "", (), None, bool(requires_grad), label)

    def __repr__(self) -> str:
        self._check_readable("repr()")
        parts = [f"data={self.data!r}", f"grad={self.grad!r}"]
        if self.op:
            parts.append(f"op={self.op!r}")
        elif not self.requires_grad:
            parts.append("constant")
        if self.label:
            parts.append(f"label={self.label!r}")
        return f"Value({', '.join(parts)})"

    @property
    def is_leaf(self) -> bool:
        """True for nodes with no parents (inputs, parameters, constants)."""
        return not self.parents

    # --- primitives

    def __add__(self, other: Any) -> Value:
        o = other if isinstance(other, Value) else _operand(other)
        return NotImplemented if o is None else _binary(ADD, self, o)

    def __radd__(self, other: Any) -> Value:
        o = _operand(other)
        return NotImplemented if o is None else _binary(ADD, o, self)

    def __mul__(self, other: Any) -> Value:
        o = other if isinstance(other, Value) else _operand(other)
        return NotImplemented if o is None else _binary(MUL, self, o)

    def __rmul__(self, other: Any) -> Value:
        o = _operand(other)
        return NotImplemented if o is None else _binary(MUL, o, self)

    def __pow__(self, other: Any) -> Value:
        if isinstance(other, Value):
            return _power(self, other)
        o = _operand(other)
        return NotImplemented if o is None else _binary(POW, self, o)

    def __rpow__(self, other: Any) -> Value:
        o = _operand(other)
        return NotImplemented if o is None else _power(o, self)

    def __abs__(self) -> Value:
        return _unary(ABS, self)

    def exp(self) -> Value:
        """``e ** self`` (overflow gives ``inf``)."""
        return _unary(EXP, self)

    def log(self) -> Value:
        """Natural logarithm; raises :class:`DomainError` for ``data <= 0``."""
        return _unary(LOG, self)

    def reciprocal(self) -> Value:
        """``1 / self``; raises :class:`ZeroDivisionDomainError` at 0."""
        return _unary(RECIPROCAL, self)

    def relu(self) -> Value:
        """``max(self, 0)``; its derivative is 0 for ``data <= 0``; NaN stays NaN."""
        return _unary(RELU, self)

    def tanh(self) -> Value:
        """Hyperbolic tangent (a primitive: accurate for every input)."""
        return _unary(TANH, self)

    def softplus(self) -> Value:
        """``log(1 + e ** self)`` computed without overflow."""
        return _unary(SOFTPLUS, self)

    # --- composites (each recorded under a scope of its name)

    def __neg__(self) -> Value:
        return _binary(MUL, self, _constant(-1.0))

    def __sub__(self, other: Any) -> Value:
        if isinstance(other, Value):
            with scope("sub"):
                return self + (-other)
        o = _operand(other)
        if o is None:
            return NotImplemented
        o.data = -o.data
        return _binary(ADD, self, o)

    def __rsub__(self, other: Any) -> Value:
        o = _operand(other)
        if o is None:
            return NotImplemented
        with scope("sub"):
            return o + (-self)

    def __truediv__(self, other: Any) -> Value:
        if isinstance(other, Value):
            with scope("div"):
                return self * other.reciprocal()
        o = _operand(other)
        if o is None:
            return NotImplemented
        o.data = apply(RECIPROCAL, o.data)
        return _binary(MUL, self, o)

    def __rtruediv__(self, other: Any) -> Value:
        o = _operand(other)
        if o is None:
            return NotImplemented
        with scope("div"):
            return o * self.reciprocal()

    def sigmoid(self) -> Value:
        """Logistic sigmoid, recorded as four primitive nodes (see functions)."""
        from microgrannd import functions

        return functions.sigmoid(self)

    def leaky_relu(self, slope: float = 0.01) -> Value:
        """``x`` for ``x > 0``, ``slope * x`` otherwise (a composite)."""
        from microgrannd import functions

        return functions.leaky_relu(self, slope)

    # --- reading the number

    def _check_readable(self, what: str) -> None:
        """Refuse to let a traced number steer Python (see microgrannd.compile)."""
        if MODE.get().node_type is not None and (self.requires_grad or type(self) is not Value):
            raise trace_error(what)

    def _number(self, what: str) -> float:
        """``data``, for a conversion that would drop this Value's gradient: refused if it records one."""
        self._check_readable(what)
        if self.requires_grad and MODE.get().grad_enabled:
            raise TypeError(
                f"{what} of a Value that records gradients would silently drop them "
                "(math.exp(v) and the other math functions call float()): use the microgrannd "
                "function instead (mg.exp(v), mg.log(v), mg.tanh(v), ...), or read v.data "
                "to take the number out of the graph on purpose")
        return self.data

    def __float__(self) -> float:
        return self._number("float()")

    def __int__(self) -> int:
        return int(self._number("int()"))

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(self._number("round()"), ndigits)

    def __trunc__(self) -> int:
        return math.trunc(self._number("math.trunc()"))

    def __bool__(self) -> bool:
        self._check_readable("bool()")
        return self.data != 0.0

    def _compare(self, other: Any, what: str) -> tuple[float, float]:
        self._check_readable(f"comparison ({what})")
        if isinstance(other, Value):
            other._check_readable(f"comparison ({what})")
            return self.data, other.data
        return self.data, number(other, "comparand")

    def __lt__(self, other: Any) -> bool:
        a, b = self._compare(other, "<")
        return a < b

    def __le__(self, other: Any) -> bool:
        a, b = self._compare(other, "<=")
        return a <= b

    def __gt__(self, other: Any) -> bool:
        a, b = self._compare(other, ">")
        return a > b

    def __ge__(self, other: Any) -> bool:
        a, b = self._compare(other, ">=")
        return a >= b

    __hash__ = object.__hash__

    # --- graph operations

    def detach(self) -> Value:
        """A constant with the same data and label, cut from the graph."""
        self._check_readable("detach()")
        return _node(Value, self.data, "", (), None, False, self.label)

    def zero_grad(self) -> None:
        """Set ``grad`` to 0.0 on every node of this node's graph."""
        for v in walk.toposort(self):
            v.grad = 0.0

    def backward(self, gradient: float = 1.0, *, create_graph: bool = False) -> None:
        """Fill in ``grad`` on every node this node depends on.

        ``gradient`` seeds the output (d loss / d self).  Interior nodes are
        recomputed on every call; leaves accumulate, so calling ``backward``
        twice doubles leaf gradients unless :meth:`zero_grad` runs between
        (as in PyTorch).  Interrupted (Ctrl-C), it leaves every leaf's
        gradient as it was.  With ``create_graph=True`` every gradient is
        built as a graph of Values, which can itself be differentiated; a leaf
        then holds a gradient that refers back to the leaf (a reference cycle,
        freed by Python's collector, not at once): prefer ``mg.grad`` or
        ``mg.gradients(y, create_graph=True)``, which store nothing.
        """
        seed = number(gradient, "backward gradient")
        if MODE.get().node_type is not None:
            raise trace_error("backward() (it writes gradients into .grad; use mg.grad or mg.gradients)")
        if self.parents:
            walk.backprop(self, seed, create_graph=create_graph, fields=True)
        else:  # a leaf: nothing to propagate
            self.grad = self.grad + seed


def _power(base: Value, exponent: Value) -> Value:
    """``base ** exponent`` for a Value exponent: ``exp(exponent * log(base))``."""
    if base.data <= 0:
        raise ops.DomainError("pow", (base.data, exponent.data), "base > 0 when the exponent is a Value")
    with scope("power"):
        return (exponent * base.log()).exp()
