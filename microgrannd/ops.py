"""The primitive table: every operation the engine records, declared once.

Each :class:`Primitive` names an operation and gives, side by side, its float
forward function, its local derivatives, its valid domain and the symbol the
drawing uses.  The engine's backward pass looks rules up here by name and never
mentions an operation itself, so adding a primitive means adding one entry to
:data:`PRIMITIVES` (the tests, the hypothesis strategies and the drawing read
the table too).

Local derivatives are written with plain arithmetic on the inputs and the
output (``mul: (b, a)``, ``exp: (out,)``, ``reciprocal: (-out * out,)``).
Called with floats they give numbers for the fast first-order backward; called
with :class:`~microgrannd.engine.Value` objects they build the derivative as a
graph, which is how higher-order derivatives work.  Constant inputs (such as
the exponent of ``pow``) are always passed as floats.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DomainError",
    "ZeroDivisionDomainError",
    "Primitive",
    "PRIMITIVES",
    "primitive",
]


class DomainError(ValueError):
    """An input lies outside the domain of a primitive (e.g. ``log(-1)``).

    ``op`` is the primitive's name and ``inputs`` the offending float inputs.
    """

    def __init__(self, op: str, inputs: tuple[float, ...], domain: str) -> None:
        shown = ", ".join(repr(x) for x in inputs)
        super().__init__(f"{op}({shown}): outside the domain of {op} ({domain})")
        self.op = op
        self.inputs = inputs
        self.domain = domain


class ZeroDivisionDomainError(DomainError, ZeroDivisionError):
    """A domain error at a pole: ``reciprocal(0)``, ``log(0)``, ``0 ** -1``.

    It is both a :class:`DomainError` (hence a ``ValueError``) and a
    ``ZeroDivisionError``, so either ``except`` clause catches it.
    """


@dataclass(frozen=True)
class Primitive:
    """One recorded operation.

    Attributes:
        name: the ``op`` string stored on every node it creates.
        arity: number of inputs (parent slots).
        forward: float function computing the output from float inputs.
        derivatives: ``derivatives(*inputs, out)`` returns one local
            derivative per input, written with plain arithmetic so it works on
            floats and on Values alike.
        symbol: short text the drawing shows for the operation.
        domain: human-readable statement of the valid inputs.
        valid: predicate on the float inputs; ``None`` means every real input
            is valid.  Invalid inputs raise :class:`DomainError`.
        constant_args: positions of inputs that must be constants (they are
            passed to ``derivatives`` as floats and receive no gradient).
        forward_code: optional Python expression computing ``forward``, with
            ``{0}``, ``{1}`` ... standing for the inputs; the compiler
            (``microgrannd.compile``) inlines it.  Needed only where
            ``forward`` cannot be evaluated on symbols (it branches on its
            input); without it the compiled code calls ``forward``.
        derivatives_code: optional expressions for the local derivatives,
            one per input, with ``{0}`` ... for the inputs and ``{out}`` for
            the output; the same role for ``derivatives``.
    """

    name: str
    arity: int
    forward: Callable[..., float]
    derivatives: Callable[..., tuple[Any, ...]]
    symbol: str
    domain: str = "all reals"
    valid: Callable[..., bool] | None = None
    constant_args: tuple[int, ...] = ()
    forward_code: str | None = None
    derivatives_code: tuple[str, ...] | None = None

    def check(self, *inputs: float) -> None:
        """Raise :class:`DomainError` if ``inputs`` are outside the domain."""
        if self.valid is not None and not self.valid(*inputs):
            error = ZeroDivisionDomainError if inputs[0] == 0 else DomainError
            raise error(self.name, inputs, self.domain)


PRIMITIVES: dict[str, Primitive] = {}


def primitive(p: Primitive) -> Primitive:
    """Add ``p`` to the table (names are unique) and return it."""
    if p.name in PRIMITIVES:
        raise ValueError(f"primitive {p.name!r} is already declared")
    PRIMITIVES[p.name] = p
    return p


# --- float helpers: IEEE behaviour (overflow saturates to inf), no exceptions


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _pow(x: float, n: float) -> float:
    try:
        return x**n
    except OverflowError:
        odd = n == int(n) and int(n) % 2 == 1
        return -math.inf if (x < 0 and odd) else math.inf
    except ZeroDivisionError:  # 0.0 ** negative: a pole
        return math.inf


def _softplus(x: float) -> float:
    # log(1 + e^x) without overflow for large x or lost digits for small x
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# --- helpers for derivative rules: the same call on floats and on Values


def power(x: Any, n: float) -> Any:
    """``x ** n`` for a float or a Value; on floats a pole gives ``inf``."""
    if type(x) is float:
        try:  # the common case without _pow's extra call: pow's rule 140 -> 116 ns
            return x**n
        except (OverflowError, ZeroDivisionError):
            return _pow(x, n)
    return _pow(x, n) if isinstance(x, float) else x**n


def exp(x: Any) -> Any:
    """``e ** x`` for a float (saturating) or a Value."""
    return _exp(x) if isinstance(x, float) else x.exp()


def _is_integer(n: float) -> bool:
    return math.isfinite(n) and n == int(n)


# --- the table

ADD = primitive(Primitive(
    "add", 2, operator.add,
    lambda a, b, out: (1.0, 1.0),
    symbol="+",
))
MUL = primitive(Primitive(
    "mul", 2, operator.mul,
    lambda a, b, out: (b, a),
    symbol="×",
))
EXP = primitive(Primitive(
    "exp", 1, _exp,
    lambda a, out: (out,),
    symbol="exp",
))
RECIPROCAL = primitive(Primitive(
    "reciprocal", 1, lambda a: 1.0 / a,
    lambda a, out: (-out * out,),
    symbol="1/x", domain="x != 0", valid=lambda a: a != 0,
))
LOG = primitive(Primitive(
    "log", 1, math.log,
    lambda a, out: (1.0 / a,),
    symbol="log", domain="x > 0", valid=lambda a: a > 0,
))
POW = primitive(Primitive(
    "pow", 2, _pow,
    lambda a, n, out: (n * power(a, n - 1) if n != 0 else 0.0, 0.0),
    symbol="^",
    domain="x >= 0 for a fractional exponent, x != 0 for a negative one",
    valid=lambda a, n: (a > 0 or _is_integer(n) or (a == 0 and n > 0))
    and not (a == 0 and n < 0),
    constant_args=(1,),
))
RELU = primitive(Primitive(
    "relu", 1, lambda a: a if a > 0 else 0.0,
    lambda a, out: (1.0 if a > 0 else 0.0,),
    symbol="relu",
    forward_code="({0} if {0} > 0 else 0.0)",
    derivatives_code=("(1.0 if {out} > 0 else 0.0)",),  # out > 0 exactly when a > 0
))
TANH = primitive(Primitive(
    "tanh", 1, math.tanh,
    lambda a, out: (1.0 - out * out,),
    symbol="tanh",
))
SOFTPLUS = primitive(Primitive(
    "softplus", 1, _softplus,
    lambda a, out: (1.0 / (1.0 + exp(-a)),),
    symbol="softplus",
))
SIGMOID_FUSED = primitive(Primitive(
    "sigmoid_fused", 1, _sigmoid,
    lambda a, out: (out * (1.0 - out),),
    symbol="σ",
))
