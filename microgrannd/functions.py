"""Differentiable functions that accept Values or plain numbers.

Each function here gives a plain float for plain-number inputs and a recorded
node (or sub-graph) for Value inputs, computed by exactly the same arithmetic.
Composites are written with the primitives and recorded under a named scope,
so the drawing can show, for instance, ``sigmoid`` as a cluster of its four
primitive nodes.
"""

from __future__ import annotations

import numbers
from typing import Any, overload

from microgrannd.engine import Value, record
from microgrannd.modes import composite
from microgrannd.ops import (
    ABS,
    COS,
    EXP,
    GATHER,
    LOG,
    PRIMITIVES,
    RECIPROCAL,
    RELU,
    SIGMOID_FUSED,
    SIN,
    SOFTPLUS,
    SQRT,
    STOP_GRADIENT,
    TANH,
    Primitive,
    number,
)

__all__ = [
    "apply",
    "exp",
    "log",
    "reciprocal",
    "relu",
    "tanh",
    "softplus",
    "sigmoid",
    "sigmoid_fused",
    "leaky_relu",
    "sin",
    "cos",
    "sqrt",
    "abs",
    "stop_gradient",
    "gather",
]


def apply(prim: Primitive | str, *args: Any) -> Any:
    """Apply a primitive (or its name) to Values or plain numbers.

    With no Value among ``args`` the result is a plain float, computed by the
    same forward function (domain errors included); otherwise a new node is
    recorded.
    """
    if isinstance(prim, str):
        prim = PRIMITIVES[prim]
    if prim.arity >= 0 and len(args) != prim.arity:  # (-1: any number, as gather)
        raise TypeError(f"{prim.name} takes {prim.arity} inputs, got {len(args)}")
    for i in prim.constant_args:
        if isinstance(args[i], Value):
            raise TypeError(f"{prim.name}: input {i} must be a number, not a Value")
    if any(isinstance(a, Value) for a in args):
        return record(prim, args)
    xs = [number(a, f"{prim.name} input") for a in args]
    prim.check(*xs)
    return prim.forward(*xs)


def _input(x: Any, what: str) -> Any:
    """A composite's input: a Value as it is, a real number as a float, anything else refused."""
    return x if isinstance(x, Value) else number(x, f"{what} input")


@overload
def exp(x: Value) -> Value: ...
@overload
def exp(x: float) -> float: ...
def exp(x: Any) -> Any:
    """``e ** x``; overflow gives ``inf``."""
    return apply(EXP, x)


@overload
def log(x: Value) -> Value: ...
@overload
def log(x: float) -> float: ...
def log(x: Any) -> Any:
    """Natural logarithm; :class:`~microgrannd.DomainError` for ``x <= 0``."""
    return apply(LOG, x)


@overload
def reciprocal(x: Value) -> Value: ...
@overload
def reciprocal(x: float) -> float: ...
def reciprocal(x: Any) -> Any:
    """``1 / x``; :class:`~microgrannd.ZeroDivisionDomainError` at 0."""
    return apply(RECIPROCAL, x)


@overload
def relu(x: Value) -> Value: ...
@overload
def relu(x: float) -> float: ...
def relu(x: Any) -> Any:
    """``max(x, 0)``, with derivative 0 for ``x <= 0``."""
    return apply(RELU, x)


@overload
def tanh(x: Value) -> Value: ...
@overload
def tanh(x: float) -> float: ...
def tanh(x: Any) -> Any:
    """Hyperbolic tangent (a primitive, accurate on the whole real line)."""
    return apply(TANH, x)


@overload
def softplus(x: Value) -> Value: ...
@overload
def softplus(x: float) -> float: ...
def softplus(x: Any) -> Any:
    """``log(1 + e ** x)``, computed without overflow; derivative ``sigmoid(x)``."""
    return apply(SOFTPLUS, x)


@overload
def sigmoid_fused(x: Value) -> Value: ...
@overload
def sigmoid_fused(x: float) -> float: ...
def sigmoid_fused(x: Any) -> Any:
    """Sigmoid as one node whose backward is ``g * y * (1 - y)``."""
    return apply(SIGMOID_FUSED, x)


@overload
def sigmoid(x: Value) -> Value: ...
@overload
def sigmoid(x: float) -> float: ...
@composite("sigmoid")
def sigmoid(x: Any) -> Any:
    """``1 / (1 + e ** -x)`` as four primitive nodes.

    From the input: ``mul`` by the constant -1, ``exp``, ``add`` the constant
    1, ``reciprocal``.  Saturates cleanly: ``sigmoid(-1000.0)`` is 0.0 and
    ``sigmoid(1000.0)`` is 1.0, both with gradient 0.0.
    """
    return reciprocal(1.0 + exp(_input(x, "sigmoid") * -1.0))


@overload
def leaky_relu(x: Value, slope: float = 0.01) -> Value: ...
@overload
def leaky_relu(x: float, slope: float = 0.01) -> float: ...
@composite("leaky_relu")
def leaky_relu(x: Any, slope: float = 0.01) -> Any:
    """``x`` for ``x > 0`` and ``slope * x`` otherwise: ``relu(x) - slope * relu(-x)``."""
    x = _input(x, "leaky_relu")
    return relu(x) + relu(x * -1.0) * -number(slope, "leaky_relu slope")


@overload
def sin(x: Value) -> Value: ...
@overload
def sin(x: float) -> float: ...
def sin(x: Any) -> Any:
    """Sine (radians); ``inf`` gives NaN."""
    return apply(SIN, x)


@overload
def cos(x: Value) -> Value: ...
@overload
def cos(x: float) -> float: ...
def cos(x: Any) -> Any:
    """Cosine (radians); ``inf`` gives NaN."""
    return apply(COS, x)


@overload
def sqrt(x: Value) -> Value: ...
@overload
def sqrt(x: float) -> float: ...
def sqrt(x: Any) -> Any:
    """Square root; :class:`~microgrannd.DomainError` for ``x < 0``; its derivative at 0 is ``inf``."""
    return apply(SQRT, x)


@overload
def abs(x: Value) -> Value: ...
@overload
def abs(x: float) -> float: ...
def abs(x: Any) -> Any:
    """Absolute value (``abs(v)`` on a Value is the same); its derivative at 0 is 0."""
    return apply(ABS, x)


@overload
def stop_gradient(x: Value) -> Value: ...
@overload
def stop_gradient(x: float) -> float: ...
def stop_gradient(x: Any) -> Any:
    """``x`` itself, through which no gradient flows (JAX's ``stop_gradient``).

    Unlike :meth:`Value.detach`, the node stays in the graph, so a compiled
    function computes it from its inputs at every call.
    """
    return apply(STOP_GRADIENT, x)


def gather(values: Any, index: Any) -> Any:
    """``values[index]``, recorded so that the index can be data: a token id picking a table row.

    ``values`` is a non-empty list or tuple of Values and numbers, or of rows
    (lists of the same length), and then the result is the row ``values[index]``
    as a list, one gather per column.  ``index`` is a Value holding an integer
    from 0 to ``len(values) - 1`` (a node is recorded, so a compiled function
    takes the index as an input and chooses anew at every call), or a plain
    int (then it is plain indexing: no node).  The gradient goes to the chosen
    entry alone (0 to the others); the index gets none: gather is not
    differentiable in its index.  A non-integer or out-of-range index raises
    :class:`~microgrannd.DomainError`.
    """
    if not isinstance(values, list | tuple) or not values:
        got = "an empty sequence" if isinstance(values, list | tuple) else type(values).__name__
        raise TypeError(f"gather: values must be a non-empty list or tuple, not {got}")
    if not isinstance(index, Value):
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"gather: the index must be a Value or an int, not {type(index).__name__}")
        GATHER.check(float(index), *[0.0] * len(values))
        return values[int(index)]
    if isinstance(values[0], list | tuple):
        width = len(values[0])
        if any(not isinstance(row, list | tuple) or len(row) != width for row in values):
            raise ValueError(f"gather: every row must be a list or tuple of length {width}, as the first")
        return [gather([row[c] for row in values], index) for c in range(width)]
    return record(GATHER, (index, *values))
