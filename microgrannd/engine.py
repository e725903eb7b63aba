"""The engine: :class:`Value` nodes, how they are recorded, and backward.

A node is plain data: ``data`` (a float), ``grad`` (a float), ``op`` (the
name of the primitive that made it, ``""`` for a leaf), ``parents`` (an
ordered tuple of Values, one slot per input), ``label``, ``scope`` (the
composite call that created it, if any) and ``requires_grad`` (``False`` for
constants).  There are no per-node closures and no reference cycles, so a
graph is freed by reference counting as soon as it is dropped.

Every walk over a graph is iterative: a chain of a million nodes works.
"""

from __future__ import annotations

import gc
import itertools
import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, overload

from microgrannd.ops import (
    ADD,
    EXP,
    LOG,
    MUL,
    POW,
    PRIMITIVES,
    RECIPROCAL,
    RELU,
    SOFTPLUS,
    TANH,
    DomainError,
    Primitive,
)

__all__ = [
    "Value",
    "Scope",
    "apply",
    "composite",
    "scope",
    "no_grad",
    "gc_paused",
    "enable_grad",
    "is_grad_enabled",
    "toposort",
    "gradients",
]

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------
# Recording state: the current composite scope and whether graphs are built.


@dataclass(frozen=True, eq=False)
class Scope:
    """One call of a composite function.

    ``name`` is the composite's name, ``id`` is unique per call, and
    ``parent`` is the enclosing composite call (``None`` at top level).
    Scopes compare and hash by identity: each call is its own scope.
    """

    name: str
    id: int
    parent: Scope | None = None

    def path(self) -> tuple[Scope, ...]:
        """This scope and its enclosing scopes, outermost first."""
        chain: list[Scope] = []
        s: Scope | None = self
        while s is not None:
            chain.append(s)
            s = s.parent
        return tuple(reversed(chain))


@dataclass(frozen=True)
class _Mode:
    scope: Scope | None
    grad_enabled: bool
    node_type: type | None = None  # set by tracing(); None means Value


# A ContextVar gives each thread (and each asyncio task) its own mode.
_MODE: ContextVar[_Mode] = ContextVar("microgrannd_mode", default=_Mode(None, True))  # noqa: B039 (frozen)
_scope_ids = itertools.count(1)


@contextmanager
def scope(name: str) -> Iterator[Scope]:
    """Record every node created inside the ``with`` block under ``name``.

    Scopes nest; the drawing shows each one as a labelled cluster.
    """
    mode = _MODE.get()
    s = Scope(name, next(_scope_ids), mode.scope)
    token = _MODE.set(_Mode(s, mode.grad_enabled, mode.node_type))
    try:
        yield s
    finally:
        _MODE.reset(token)


@overload
def composite(fn: F, /) -> F: ...
@overload
def composite(name: str, /) -> Callable[[F], F]: ...
def composite(arg: Any, /) -> Any:
    """Decorate a function so that each call records its nodes in a scope.

    Use as ``@composite`` (the scope is named after the function) or as
    ``@composite("name")``.
    """

    def decorate(fn: F, name: str) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope(name):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if isinstance(arg, str):
        return lambda fn: decorate(fn, arg)
    return decorate(arg, arg.__name__)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector inside the block; an explicit opt-in.

    microgrannd's graphs hold no reference cycles: reference counting frees
    them, so the collector finds nothing in them, yet while a large graph is
    being built it rescans it again and again (a training step of micrograd's
    demo network runs about 1.6x faster without it, and building a chain of a
    million nodes stays linear in time).  The collector's state is global to
    the interpreter: other threads are affected too, and cycles that other
    code makes inside the block are reclaimed only after it.  The previous
    state is restored on exit.  microgrannd never pauses the collector on its
    own.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def no_grad() -> Iterator[None]:
    """Inside the block, operations record no graph: results are constants."""
    mode = _MODE.get()
    token = _MODE.set(_Mode(mode.scope, False, mode.node_type))
    try:
        yield
    finally:
        _MODE.reset(token)


@contextmanager
def enable_grad() -> Iterator[None]:
    """Inside the block, operations record graphs again (even within :func:`no_grad`)."""
    mode = _MODE.get()
    token = _MODE.set(_Mode(mode.scope, True))
    try:
        yield
    finally:
        _MODE.reset(token)


def is_grad_enabled() -> bool:
    """True unless called inside :func:`no_grad`."""
    return _MODE.get().grad_enabled


@contextmanager
def tracing(node_type: type) -> Iterator[None]:
    """Inside the block, every recorded node is created as ``node_type``.

    ``node_type`` must be a subclass of :class:`Value` declaring
    ``__slots__ = ()``.  The compiler (``microgrannd.compile``) uses it to
    record a graph with nodes that refuse to let the traced function branch
    on their data; outside this block nothing changes.
    """
    mode = _MODE.get()
    token = _MODE.set(_Mode(mode.scope, mode.grad_enabled, node_type))
    try:
        yield
    finally:
        _MODE.reset(token)


# --------------------------------------------------------------------------
# Values


def _as_float(x: object, what: str = "Value data") -> float:
    if type(x) is float:
        return x
    if isinstance(x, numbers.Real):
        return float(x)
    raise TypeError(f"{what} must be a real number (int or float), not {type(x).__name__}")


_new = object.__new__


def _constant(x: float) -> Value:
    v: Value = _new(Value)
    v.data = x
    v.grad = 0.0
    v.op = ""
    v.parents = ()
    v.label = ""
    v.scope = None
    v.requires_grad = False
    return v


def _operand(x: object) -> Value | None:
    """A Value for an operator's other operand, or None if it is not a number."""
    if isinstance(x, Value):
        return x
    # float and int first: the abstract-class check below costs ~250 ns, and
    # with it ``x + 1.0`` and ``x ** 2`` took ~700-840 ns instead of ~400 ns
    if type(x) is float or type(x) is int or isinstance(x, numbers.Real):
        return _constant(float(x))
    return None


def _node(prim: Primitive, data: float, parents: tuple[Value, ...]) -> Value:
    """A new node holding ``data``: made by ``prim`` from ``parents``, or a constant under no_grad."""
    mode = _MODE.get()
    v: Value = _new(mode.node_type or Value)
    v.data = data
    v.grad = 0.0
    v.label = ""
    if mode.grad_enabled:
        v.op = prim.name
        v.parents = parents
        v.scope = mode.scope
        v.requires_grad = True
    else:
        v.op = ""
        v.parents = ()
        v.scope = None
        v.requires_grad = False
    return v


# _binary and _unary are _record without its tuple indexing and arity tests:
# the hot path of ``+ * **`` and of the one-input methods (``x + y`` went from
# ~240 to ~210 ns per node, timeit with gc off).


def _binary(prim: Primitive, a: Value, b: Value) -> Value:
    """Record a two-input primitive applied to ``a`` and ``b``."""
    x, y = a.data, b.data
    if prim.valid is not None and not prim.valid(x, y):
        prim.check(x, y)  # raises the DomainError
    return _node(prim, prim.forward(x, y), (a, b))


def _unary(prim: Primitive, a: Value) -> Value:
    """Record a one-input primitive (relu, exp, log, tanh, ...) applied to ``a``."""
    x = a.data
    if prim.valid is not None and not prim.valid(x):
        prim.check(x)  # raises the DomainError
    return _node(prim, prim.forward(x), (a,))


def _record(prim: Primitive, inputs: tuple[Value, ...]) -> Value:
    """Run ``prim`` forward on the inputs' data and record the new node."""
    if len(inputs) == 2:
        return _binary(prim, inputs[0], inputs[1])
    if len(inputs) == 1:
        return _unary(prim, inputs[0])
    xs = [v.data for v in inputs]
    if prim.valid is not None:
        prim.check(*xs)
    return _node(prim, prim.forward(*xs), inputs)


def apply(prim: Primitive | str, *args: Any) -> Any:
    """Apply a primitive (or its name) to Values or plain numbers.

    With no Value among ``args`` the result is a plain float, computed by the
    same forward function; otherwise a new node is recorded.
    """
    if isinstance(prim, str):
        prim = PRIMITIVES[prim]
    if len(args) != prim.arity:
        raise TypeError(f"{prim.name} takes {prim.arity} inputs, got {len(args)}")
    for i in prim.constant_args:
        if isinstance(args[i], Value):
            raise TypeError(f"{prim.name}: input {i} must be a number, not a Value")
    if not any(isinstance(a, Value) for a in args):
        xs = [_as_float(a, f"{prim.name} input") for a in args]
        if prim.valid is not None:
            prim.check(*xs)
        return prim.forward(*xs)
    nodes = []
    for a in args:
        node = _operand(a)
        if node is None:
            raise TypeError(f"{prim.name} input must be a Value or a real number, not {type(a).__name__}")
        nodes.append(node)
    return _record(prim, tuple(nodes))


class Value:
    """A scalar node of a computation graph.

    ``Value(data, label="")`` makes a leaf.  Arithmetic with Values and plain
    numbers (on either side) records new nodes; :meth:`backward` fills in
    ``grad`` on every node of the graph.  Equality and hashing are by identity:
    two Values are the same node or not.  Comparisons (``<``, ``>``, ...) and
    ``float(v)`` use ``data``.
    """

    __slots__ = ("data", "grad", "op", "parents", "label", "scope", "requires_grad")

    data: float
    grad: Any  # a float; a Value after backward(create_graph=True)
    op: str
    parents: tuple[Value, ...]
    label: str
    scope: Scope | None
    requires_grad: bool

    def __init__(self, data: float, label: str = "", *, requires_grad: bool = True) -> None:
        if not isinstance(label, str):
            raise TypeError(f"Value label must be a str, not {type(label).__name__}")
        self.data = _as_float(data)
        self.grad = 0.0
        self.op = ""
        self.parents = ()
        self.label = label
        self.scope = None
        self.requires_grad = bool(requires_grad)

    def __repr__(self) -> str:
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
        o = other if isinstance(other, Value) else _operand(other)
        return NotImplemented if o is None else _binary(ADD, o, self)

    def __mul__(self, other: Any) -> Value:
        o = other if isinstance(other, Value) else _operand(other)
        return NotImplemented if o is None else _binary(MUL, self, o)

    def __rmul__(self, other: Any) -> Value:
        o = other if isinstance(other, Value) else _operand(other)
        return NotImplemented if o is None else _binary(MUL, o, self)

    def __pow__(self, other: Any) -> Value:
        if type(other) is float or type(other) is int:
            return _binary(POW, self, _constant(float(other)))
        if isinstance(other, Value):
            return _power(self, other)
        if not isinstance(other, numbers.Real):
            return NotImplemented
        return _binary(POW, self, _constant(float(other)))

    def __rpow__(self, other: Any) -> Value:
        o = _operand(other)
        return NotImplemented if o is None else _power(o, self)

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
        """``max(self, 0)``; its derivative is 0 for ``data <= 0``."""
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
        if not isinstance(other, numbers.Real):
            return NotImplemented
        return _binary(ADD, self, _constant(-float(other)))

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
        if not isinstance(other, numbers.Real):
            return NotImplemented
        return _binary(MUL, self, _constant(apply(RECIPROCAL, other)))

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

    def __float__(self) -> float:
        return self.data

    def __bool__(self) -> bool:
        return self.data != 0.0

    def __lt__(self, other: Any) -> bool:
        return self.data < _as_float(other.data if isinstance(other, Value) else other, "comparand")

    def __le__(self, other: Any) -> bool:
        return self.data <= _as_float(other.data if isinstance(other, Value) else other, "comparand")

    def __gt__(self, other: Any) -> bool:
        return self.data > _as_float(other.data if isinstance(other, Value) else other, "comparand")

    def __ge__(self, other: Any) -> bool:
        return self.data >= _as_float(other.data if isinstance(other, Value) else other, "comparand")

    __hash__ = object.__hash__

    # --- graph operations

    def detach(self) -> Value:
        """A constant with the same data and label, cut from the graph."""
        return Value(self.data, self.label, requires_grad=False)

    def zero_grad(self) -> None:
        """Set ``grad`` to 0.0 on every node of this node's graph."""
        for v in toposort(self):
            v.grad = 0.0

    def backward(self, gradient: float = 1.0, *, create_graph: bool = False) -> None:
        """Fill in ``grad`` on every node this node depends on.

        ``gradient`` seeds the output (d loss / d self).  Interior nodes are
        recomputed on every call; leaves accumulate, so calling ``backward``
        twice doubles leaf gradients unless :meth:`zero_grad` runs between
        (as in PyTorch).  With ``create_graph=True`` every gradient is built
        as a graph of Values, which can itself be differentiated.

        Constants (plain numbers that entered the graph) receive their
        gradients too, though nothing needs them.  The walk uses the interior
        nodes' ``grad`` fields as scratch space: do not run ``backward`` on
        graphs that share nodes from two threads at once (the functional
        :func:`gradients` touches no field and has no such limit).
        """
        seed = _as_float(gradient, "backward gradient")
        if create_graph:
            order = toposort(self)
            grads = gradients(self, seed, create_graph=True)
            for v in order:
                g = grads.get(v, 0.0)
                v.grad = g if v.parents else v.grad + g
            return
        if not self.parents:  # a leaf: nothing to propagate
            self.grad += seed
            return
        order = _interior_order(self)  # also resets their grads to 0.0
        self.grad = seed
        rules = {name: prim.derivatives for name, prim in PRIMITIVES.items()}
        for v in reversed(order):
            g = v.grad
            if g == 0.0:  # nothing flows back (and 0 * inf stays 0)
                continue
            parents = v.parents
            rule = rules[v.op]
            # Unrolled by arity: calling the rule on the parents' data without
            # building intermediate lists roughly halves the cost per node.
            if len(parents) == 2:
                a, b = parents
                da, db = rule(a.data, b.data, v.data)
                a.grad += g * da
                b.grad += g * db
            elif len(parents) == 1:
                (a,) = parents
                (da,) = rule(a.data, v.data)
                a.grad += g * da
            else:
                ds = rule(*[p.data for p in parents], v.data)
                for p, d in zip(parents, ds, strict=True):
                    p.grad += g * d


def _power(base: Value, exponent: Value) -> Value:
    """``base ** exponent`` for a Value exponent: ``exp(exponent * log(base))``."""
    if base.data <= 0:
        raise DomainError("pow", (base.data, exponent.data), "base > 0 when the exponent is a Value")
    with scope("power"):
        return (exponent * base.log()).exp()


# --------------------------------------------------------------------------
# Walking the graph


def toposort(root: Value) -> list[Value]:
    """Every node ``root`` depends on, once each, parents before children.

    Iterative depth-first search: no recursion, so depth is unlimited.
    """
    order: list[Value] = []
    entered: set[Value] = set()  # parents pushed
    done: set[Value] = set()  # appended to order
    stack = [root]
    while stack:
        v = stack[-1]
        if v in entered:  # its parents are all done now (or v was a duplicate)
            stack.pop()
            if v not in done:
                done.add(v)
                order.append(v)
            continue
        entered.add(v)
        for p in v.parents:
            if p not in entered:
                stack.append(p)
    return order


# Marks that _interior_order leaves in the grad field of the nodes it visits.
_ENTERED: Any = object()
_DONE: Any = object()


def _interior_order(root: Value) -> list[Value]:
    """The interior (non-leaf) nodes ``root`` depends on, parents first; their grads set to 0.0.

    The walk of :func:`toposort`, for :meth:`Value.backward` only: it skips
    leaves and marks visited nodes in their ``grad`` field instead of two hash
    sets (backward resets interior grads anyway).  ``toposort`` was most of
    the backward pass; measured (thread time) on micrograd's demo graph of
    65,000 nodes this walk takes ~10 ms instead of 17-19 ms, and on a chain
    of 100,000 ``x*c + d`` steps 22 ms instead of 90 ms.  Leaves (parameters,
    inputs, constants) are never touched.
    """
    order: list[Value] = []
    stack = [root]
    try:
        while stack:
            v = stack.pop()
            mark = v.grad
            if mark is _ENTERED:  # second visit: its parents are all in order
                v.grad = _DONE
                order.append(v)
                continue
            if mark is _DONE:  # a second entry for a node finished meanwhile
                continue
            # First visit: enter v, push its unfinished parents but walk straight
            # on into the last one (20% faster on chains than a stack round trip).
            nxt: Value | None = v
            while nxt is not None:
                v = nxt
                v.grad = _ENTERED
                stack.append(v)
                nxt = None
                for p in v.parents:
                    if p.parents and p.grad is not _DONE:
                        if nxt is not None:
                            stack.append(nxt)
                        nxt = p
    finally:  # no mark survives, even if the walk is interrupted
        for v in order:
            v.grad = 0.0
        for v in stack:
            v.grad = 0.0
    return order


def gradients(root: Value, seed: Any = 1.0, *, create_graph: bool = False) -> dict[Value, Any]:
    """Return ``{node: d root / d node}`` for the nodes ``root`` depends on.

    Unlike :meth:`Value.backward` this touches no ``grad`` field.  A node that
    receives no gradient may be missing from the dict (read it with
    ``.get(node, 0.0)``).  With ``create_graph=True`` the gradients are Values
    (or floats where they are constant), built from the same derivative rules,
    so they can be differentiated again.
    """
    grads: dict[Value, Any] = {root: seed}
    for v in reversed(toposort(root)):
        parents = v.parents
        g = grads.get(v)
        if not parents or g is None or (isinstance(g, float) and g == 0.0):
            continue
        prim = PRIMITIVES[v.op]
        if create_graph:
            # constants enter the rule as floats; everything else as nodes
            ds = prim.derivatives(*[p if p.requires_grad else p.data for p in parents], v)
        else:
            ds = prim.derivatives(*[p.data for p in parents], v.data)
        for p, d in zip(parents, ds, strict=True):
            contribution = g * d
            grads[p] = grads[p] + contribution if p in grads else contribution
    return grads
