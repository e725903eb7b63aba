"""The engine: :class:`Value` nodes and how operations record them.

A node is plain data: ``data`` (a float), ``grad`` (a float; a Value after
``backward(create_graph=True)``), ``op`` (the name of the primitive that made
it, ``""`` for a leaf), ``parents`` (an ordered tuple of Values, one slot per
input), ``label``, ``scope`` (the composite call that created it, if any) and
``requires_grad`` (``False`` for constants).  There are no per-node closures,
so a graph is freed by reference counting as soon as it is dropped.  Walks
(backward among them) live in :mod:`microgrannd.walk`, the recording mode in
:mod:`microgrannd.modes`, the primitives in :mod:`microgrannd.ops`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from microgrannd import ops, walk
from microgrannd.modes import DEFAULT, Scope, current_mode, scope, trace_error
from microgrannd.ops import ABS, ADD, EXP, LOG, MUL, POW, RECIPROCAL, SOFTPLUS, TANH, Primitive, number

__all__ = ["Value"]


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
        """A leaf holding ``data`` (a real number, stored as a float)."""
        if not isinstance(label, str):
            raise TypeError(f"Value label must be a str, not {type(label).__name__}")
        return _leaf(number(data, "Value data"), bool(requires_grad), label, cls)

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

    # --- primitives: the operators, and methods for micrograd's names

    def __add__(self, other: Any) -> Value:
        if type(other) is not Value:
            other = _operand(other)
            if other is None:
                return NotImplemented
        mode = current_mode()
        if mode is not DEFAULT and (mode.node_type is not None or not mode.grad_enabled):
            return _make(self.data + other.data, "add", (self, other))
        v = _new(Value)  # _make, inlined for Values recorded in any scope: + and * make most nodes
        v.data = self.data + other.data  # ADD's forward, inlined
        v.grad = 0.0
        v.op = "add"
        v.parents = (self, other)
        v.label = ""
        v.scope = mode.scope
        v.requires_grad = True
        v._mark = 0
        return v

    def __radd__(self, other: Any) -> Value:
        o = _operand(other)
        return NotImplemented if o is None else _make(o.data + self.data, "add", (o, self))

    def __mul__(self, other: Any) -> Value:
        if type(other) is not Value:
            other = _operand(other)
            if other is None:
                return NotImplemented
        mode = current_mode()
        if mode is not DEFAULT and (mode.node_type is not None or not mode.grad_enabled):
            return _make(self.data * other.data, "mul", (self, other))
        v = _new(Value)  # as in __add__
        v.data = self.data * other.data  # MUL's forward, inlined
        v.grad = 0.0
        v.op = "mul"
        v.parents = (self, other)
        v.label = ""
        v.scope = mode.scope
        v.requires_grad = True
        v._mark = 0
        return v

    def __rmul__(self, other: Any) -> Value:
        o = _operand(other)
        return NotImplemented if o is None else _make(o.data * self.data, "mul", (o, self))

    def __pow__(self, other: Any) -> Value:
        if type(other) is float:  # the common case, without _operand's tests
            return _binary(POW, self, _leaf(other))
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
        x = self.data
        return _make(0.0 if x <= 0 else x, "relu", (self,))  # RELU's forward, inlined

    def tanh(self) -> Value:
        """Hyperbolic tangent (a primitive: accurate for every input)."""
        return _unary(TANH, self)

    def softplus(self) -> Value:
        """``log(1 + e ** self)`` computed without overflow."""
        return _unary(SOFTPLUS, self)

    # --- composites (each recorded under a scope of its name)

    def __neg__(self) -> Value:
        return _make(self.data * -1.0, "mul", (self, _leaf(-1.0)))

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
        RECIPROCAL.check(o.data)
        o.data = 1.0 / o.data
        return _binary(MUL, self, o)

    def __rtruediv__(self, other: Any) -> Value:
        o = _operand(other)
        if o is None:
            return NotImplemented
        with scope("div"):
            return o * self.reciprocal()

    def sigmoid(self) -> Value:
        """Logistic sigmoid, recorded as four primitive nodes (see functions)."""
        from microgrannd.functions import sigmoid

        return sigmoid(self)

    def leaky_relu(self, slope: float = 0.01) -> Value:
        """``x`` for ``x > 0``, ``slope * x`` otherwise (a composite)."""
        from microgrannd.functions import leaky_relu

        return leaky_relu(self, slope)

    # --- reading the number

    def item(self) -> float:
        """The number, ``data`` (PyTorch's name): reading it takes it out of the graph."""
        self._check_readable("item()")
        return self.data

    def _check_readable(self, what: str) -> None:
        """Refuse to let a traced number steer Python (see microgrannd.compile)."""
        if current_mode().node_type is not None and (self.requires_grad or type(self) is not Value):
            raise trace_error(what)

    def _number(self, what: str) -> float:
        """``data`` for a conversion to a number: refused where it would drop a gradient."""
        self._check_readable(what)
        if self.requires_grad and current_mode().grad_enabled:
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
        self._check_readable(what)
        if isinstance(other, Value):
            other._check_readable(what)
            return self.data, other.data
        return self.data, number(other, "comparand")

    def __lt__(self, other: Any) -> bool:
        a, b = self._compare(other, "comparison (<)")
        return a < b

    def __le__(self, other: Any) -> bool:
        a, b = self._compare(other, "comparison (<=)")
        return a <= b

    def __gt__(self, other: Any) -> bool:
        a, b = self._compare(other, "comparison (>)")
        return a > b

    def __ge__(self, other: Any) -> bool:
        a, b = self._compare(other, "comparison (>=)")
        return a >= b

    __hash__ = object.__hash__

    # --- graph operations

    def detach(self) -> Value:
        """A constant with the same data and label, cut from the graph."""
        self._check_readable("detach()")
        return _leaf(self.data, label=self.label)

    def zero_grad(self) -> None:
        """Set ``grad`` to 0.0 on every node of this node's graph."""
        for v in walk.toposort(self):
            v.grad = 0.0

    def backward(self, gradient: float = 1.0, *, create_graph: bool = False) -> None:
        """Fill in ``grad`` on every node this node depends on.

        ``gradient`` seeds the output (d loss / d self).  Interior nodes are
        recomputed on every call; leaves accumulate, so calling ``backward``
        twice doubles leaf gradients unless :meth:`zero_grad` runs between
        (as in PyTorch); a ``grad`` set to ``None`` counts as zero.
        Interrupted (Ctrl-C), it leaves every leaf's gradient as it was
        (constants' gradients are scratch).  With ``create_graph=True`` every
        gradient is built as a graph of Values, which can itself be
        differentiated; a leaf
        then holds a gradient that refers back to the leaf (a reference cycle,
        freed by Python's collector, not at once): prefer ``mg.grad`` or
        ``mg.gradients(y, create_graph=True)``, which store nothing.  Two
        threads running ``backward`` at once on graphs that share nodes would
        mix their interior gradients; :func:`~microgrannd.gradients` writes no
        field and has no such limit.
        """
        seed = number(gradient, "backward gradient")
        if current_mode().node_type is not None:
            raise trace_error("backward() (it writes gradients into .grad; use mg.grad or mg.gradients)")
        if not self.requires_grad:
            raise RuntimeError("backward() of a Value that does not require grad: it is a constant "
                               "(made from plain numbers, or under no_grad()), so no gradient can flow from it")
        if self.parents:
            walk.backprop(self, seed, create_graph=create_graph, fields=True)
        else:  # a leaf: nothing to propagate
            self.grad = (0.0 if self.grad is None else self.grad) + seed


# --------------------------------------------------------------------------
# Recording: every node is made by _leaf or _make; operations go through _make, _binary, _unary or record

_new: Callable[[type], Any] = object.__new__


def _leaf(data: float, requires_grad: bool = False, label: str = "", cls: type = Value) -> Value:
    """A node with no parents, of class ``cls``: a constant unless ``requires_grad``."""
    v: Value = _new(cls)
    v.data = data
    v.grad = 0.0
    v.op = ""
    v.parents = ()
    v.label = label
    v.scope = None
    v.requires_grad = requires_grad
    v._mark = 0
    return v


def _make(data: float, op: str, parents: tuple[Value, ...]) -> Value:
    """The node of an operation, recorded in the current mode: the hot path of every primitive.

    A node of the tracing class while tracing, in the current scope; under
    :func:`~microgrannd.no_grad` a constant.  It runs once per node, so the
    default mode (no block entered) takes a path of its own: one allocation
    and eight slot stores (``+`` and ``*`` inline it; see docs/speed.md).
    """
    mode = current_mode()
    if mode is DEFAULT:
        v: Value = _new(Value)
        v.scope = None
    elif mode.grad_enabled:
        v = _new(mode.node_type or Value)
        v.scope = mode.scope
    else:
        return _leaf(data, False, "", mode.node_type or Value)
    v.data = data
    v.grad = 0.0
    v.op = op
    v.parents = parents
    v.label = ""
    v.requires_grad = True
    v._mark = 0
    return v


def _operand(x: object) -> Value | None:
    """An operator's other operand as a Value (a number becomes a constant), or None."""
    if type(x) is float:
        return _leaf(x)
    if isinstance(x, Value):
        return x
    if type(x) is int or (isinstance(x, numbers.Real) and not isinstance(x, bool)):
        return _leaf(number(x, "operand"))
    return None


def _domain(prim: Primitive, *xs: float) -> None:
    if current_mode().checked:  # inside a derivative rule a pole gives inf, as on floats
        prim.check(*xs)


def _binary(prim: Primitive, a: Value, b: Value) -> Value:
    """Record a two-input primitive (the hot path of ``+ * **``)."""
    x, y = a.data, b.data
    if prim.valid is not None and not prim.valid(x, y):
        _domain(prim, x, y)
    return _make(prim.forward(x, y), prim.name, (a, b))


def _unary(prim: Primitive, a: Value) -> Value:
    """Record a one-input primitive (relu, exp, log, tanh, ...)."""
    x = a.data
    if prim.valid is not None and not prim.valid(x):
        _domain(prim, x)
    return _make(prim.forward(x), prim.name, (a,))


def record(prim: Primitive, args: tuple[Any, ...]) -> Value:
    """Record ``prim`` applied to Values and plain numbers (which become constants)."""
    nodes = tuple(_operand(a) for a in args)
    for a, node in zip(args, nodes, strict=True):
        if node is None:
            raise TypeError(f"{prim.name} input must be a Value or a real number, not {type(a).__name__}")
    xs = [v.data for v in nodes]  # type: ignore[union-attr]
    if prim.valid is not None and not prim.valid(*xs):
        _domain(prim, *xs)
    return _make(prim.forward(*xs), prim.name, nodes)  # type: ignore[arg-type]


def _power(base: Value, exponent: Value) -> Value:
    """``base ** exponent`` for a Value exponent: ``exp(exponent * log(base))``."""
    if base.data <= 0:
        raise ops.DomainError("pow", (base.data, exponent.data), "base > 0 when the exponent is a Value")
    with scope("power"):
        return (exponent * base.log()).exp()


ops._record = record  # rules call primitives on Values through this
