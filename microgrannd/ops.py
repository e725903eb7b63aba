"""The primitive table: every operation the engine records, declared once.

Each :class:`Primitive` names an operation and gives, side by side, its float
forward function, its derivative rule, its valid domain and the symbol the
drawing uses.  The engine's backward pass looks rules up here by name and never
mentions an operation itself, so adding a primitive means adding one entry to
:data:`PRIMITIVES` (the tests, the hypothesis strategies, the drawing and the
compiler read the table too).

A rule is written with plain arithmetic and calls to primitives, on the inputs,
the output and the upstream gradient ``g``: ``mul: (g * b, g * a)``,
``exp: (g * out,)``, ``reciprocal: (-(g * out) * out,)``.  Called with floats
it gives numbers for the fast first-order backward; called with
:class:`~microgrannd.engine.Value` objects it builds the derivative as a graph,
which is how higher-order derivatives work.  Multiplying ``g`` in first keeps
numbers representable (``-out * out`` alone underflows long before
``g * out`` does), and a rule that selects (relu's mask) uses :func:`gate`, so
nothing upstream, not even ``inf``, leaks through a closed mask.
"""

from __future__ import annotations

import math
import numbers
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
    "number",
    "gate",
    "power",
    "reciprocal",
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


#: Set by the engine when it is imported: records a primitive applied to Values.
_record: Callable[..., Any] | None = None


@dataclass(frozen=True, kw_only=True)
class Primitive:
    """One recorded operation, declared with keywords.

    Attributes:
        name: the ``op`` string stored on every node it creates.
        arity: number of inputs (parent slots).
        forward: float function computing the output from float inputs; it
            never raises (a pole gives ``inf``): the domain is ``valid``'s job.
        vjp: ``vjp(g, *inputs, out)`` returns what each input receives when
            ``g`` flows into the output (``g`` times the local derivative).
            Give either ``vjp`` or ``derivatives``; the other is derived.
        derivatives: ``derivatives(*inputs, out)`` returns one local
            derivative per input (``vjp`` with ``g = 1``).
        symbol: short text the drawing shows for the operation.
        domain: human-readable statement of the valid inputs.
        valid: predicate on the float inputs; ``None`` means every real input
            is valid.  Invalid inputs raise :class:`DomainError`.
        constant_args: positions of inputs that must be constants (they are
            passed to the rule as floats and receive no gradient).
        differentiable: False for a rule that deliberately sends nothing back
            (``stop_gradient``): gradient checks and random expressions skip it.
        forward_code / vjp_code: optional Python expressions for the compiler
            (``microgrannd.compile``), with ``{0}``, ``{1}`` ... for the
            inputs, ``{out}`` for the output and ``{g}`` for the upstream
            gradient; needed only where the rule branches on its inputs.
    """

    name: str
    arity: int
    forward: Callable[..., float]
    vjp: Callable[..., tuple[Any, ...]] = None  # type: ignore[assignment]
    derivatives: Callable[..., tuple[Any, ...]] = None  # type: ignore[assignment]
    symbol: str
    domain: str = "all reals"
    valid: Callable[..., bool] | None = None
    constant_args: tuple[int, ...] = ()
    differentiable: bool = True
    forward_code: str | None = None
    vjp_code: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.vjp is None) == (self.derivatives is None):
            raise TypeError(f"primitive {self.name!r}: give exactly one of vjp= and derivatives=")
        if self.vjp is None:
            rule = self.derivatives
            object.__setattr__(self, "vjp", lambda g, *xs: tuple(g * d for d in rule(*xs)))
        else:
            vjp = self.vjp
            object.__setattr__(self, "derivatives", lambda *xs: vjp(1.0, *xs))

    def check(self, *inputs: float) -> None:
        """Raise :class:`DomainError` if ``inputs`` are outside the domain."""
        if self.valid is not None and not self.valid(*inputs):
            error = ZeroDivisionDomainError if inputs[0] == 0 else DomainError
            raise error(self.name, inputs, self.domain)

    def __call__(self, *args: Any) -> Any:
        """Apply to floats (a float) or to Values (a recorded node), as rules do.

        On floats no domain is checked: a pole gives ``inf`` (IEEE), as
        derivative rules need.  For a checked call use :func:`microgrannd.apply`.
        """
        for a in args:
            if type(a) is not float:
                symbolic = getattr(a, "_apply_primitive", None)  # the compiler's symbols
                if symbolic is not None:
                    return symbolic(self, args)
                assert _record is not None, "microgrannd.engine records Values"
                return _record(self, args)
        return self.forward(*args)


PRIMITIVES: dict[str, Primitive] = {}


def primitive(p: Primitive) -> Primitive:
    """Add ``p`` to the table (names are unique) and return it."""
    if p.name in PRIMITIVES:
        raise ValueError(f"primitive {p.name!r} is already declared")
    PRIMITIVES[p.name] = p
    return p


def number(x: object, what: str) -> float:
    """``x`` as a float, or a TypeError / ValueError that names ``what``: the one input policy.

    Real numbers (int, float, Fraction, numpy floats and ints) are accepted;
    ``bool`` is refused (``True`` is a truth value, not a number here), and so
    are an int too large for a float and anything that is not a real number.
    """
    if type(x) is float:
        return x
    if type(x) is int or (isinstance(x, numbers.Real) and not isinstance(x, bool)):  # (an int: no ABC check)
        try:
            return float(x)
        except OverflowError:
            raise ValueError(f"{what} must fit in a float; {str(x)[:20]}... is too large") from None
    kind = "a truth value (bool)" if isinstance(x, bool) or type(x).__name__ == "bool_" else type(x).__name__
    raise TypeError(f"{what} must be a real number (int or float), not {kind}")


# --- float helpers: IEEE behaviour (overflow saturates, a pole gives inf)


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
        odd = n == int(n) and int(n) % 2 == 1
        return math.copysign(math.inf, x) if odd else math.inf


def _reciprocal(x: float) -> float:
    return 1.0 / x if x else math.copysign(math.inf, x)


def _log(x: float) -> float:
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


def _sin(x: float) -> float:
    return math.sin(x) if math.isfinite(x) else math.nan


def _cos(x: float) -> float:
    return math.cos(x) if math.isfinite(x) else math.nan


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan


def _softplus(x: float) -> float:
    # log(1 + e^x) without overflow for large x or lost digits for small x
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _is_integer(n: float) -> bool:
    return math.isfinite(n) and n == int(n)


# --- helpers for rules: the same call on floats and on Values


def power(x: Any, n: float) -> Any:
    """``x ** n`` for a float or a Value; on floats a pole gives ``inf``."""
    if type(x) is float:
        try:  # the common case without _pow's extra call
            return x**n
        except (OverflowError, ZeroDivisionError):
            return _pow(x, n)
    return POW(x, n)


def reciprocal(x: Any) -> Any:
    """``1 / x`` for a float or a Value; on floats 0 gives ``inf``."""
    if type(x) is float:
        return 1.0 / x if x else math.copysign(math.inf, x)
    return RECIPROCAL(x)


def gate(g: Any, x: Any) -> Any:
    """``g`` where ``x > 0``, exactly ``0.0`` where ``x <= 0``: a mask, never a product.

    ``inf * 0`` would be NaN; a mask sends nothing back whatever ``g`` is.  On
    a Value ``x`` it records the ``gate`` primitive, so the decision is taken
    again on every input (a compiled function does not bake it in).
    """
    if type(x) is float:
        return 0.0 if x <= 0 else g
    return GATE(g, x)


# --- the table

ADD = primitive(Primitive(
    name="add", arity=2, forward=operator.add,
    vjp=lambda g, a, b, out: (g, g),
    symbol="+",
))
MUL = primitive(Primitive(
    name="mul", arity=2, forward=operator.mul,
    vjp=lambda g, a, b, out: (g * b, g * a),
    symbol="×",
))
EXP = primitive(Primitive(
    name="exp", arity=1, forward=_exp,
    vjp=lambda g, a, out: (g * out,),
    symbol="exp",
))
RECIPROCAL = primitive(Primitive(
    name="reciprocal", arity=1, forward=_reciprocal,
    vjp=lambda g, a, out: (-(g * out) * out,),
    symbol="1/x", domain="x != 0", valid=lambda a: a != 0,
))
LOG = primitive(Primitive(
    name="log", arity=1, forward=_log,
    vjp=lambda g, a, out: (g * reciprocal(a),),
    symbol="log", domain="x > 0", valid=lambda a: a > 0,
))
POW = primitive(Primitive(
    name="pow", arity=2, forward=_pow,
    vjp=lambda g, a, n, out: (g * (n * power(a, n - 1.0)) if n != 0 else 0.0, 0.0),
    symbol="^",
    domain="x >= 0 for a fractional exponent, x != 0 for a negative one",
    valid=lambda a, n: (a > 0 or _is_integer(n) or (a == 0 and n > 0)) and not (a == 0 and n < 0),
    constant_args=(1,),
))
GATE = primitive(Primitive(
    name="gate", arity=2, forward=lambda g, x: 0.0 if x <= 0 else g,
    vjp=lambda u, g, x, out: (gate(u, x), 0.0),
    symbol="mask",
    forward_code="(0.0 if {1} <= 0 else {0})",
    vjp_code=("(0.0 if {1} <= 0 else {g})", "0.0"),
))
RELU = primitive(Primitive(
    name="relu", arity=1, forward=lambda a: 0.0 if a <= 0 else a,  # NaN propagates
    vjp=lambda g, a, out: ((0.0 if a <= 0 else g) if type(a) is float else GATE(g, a),),  # gate(g, a), inlined
    symbol="relu",
    forward_code="(0.0 if {0} <= 0 else {0})",
    vjp_code=("(0.0 if {0} <= 0 else {g})",),
))
TANH = primitive(Primitive(
    name="tanh", arity=1, forward=math.tanh,
    vjp=lambda g, a, out: (g * (1.0 - out * out),),
    symbol="tanh",
))
SIGMOID_FUSED = primitive(Primitive(
    name="sigmoid_fused", arity=1, forward=_sigmoid,
    vjp=lambda g, a, out: (g * (out * (1.0 - out)),),
    symbol="σ",
))
SOFTPLUS = primitive(Primitive(
    name="softplus", arity=1, forward=_softplus,
    vjp=lambda g, a, out: (g * reciprocal(1.0 + EXP(-a)),),
    symbol="softplus",
))
COS: Primitive  # declared below; sin's rule calls it
SIN = primitive(Primitive(
    name="sin", arity=1, forward=_sin,
    vjp=lambda g, a, out: (g * COS(a),),
    symbol="sin",
))
COS = primitive(Primitive(
    name="cos", arity=1, forward=_cos,
    vjp=lambda g, a, out: (-(g * SIN(a)),),
    symbol="cos",
))
SQRT = primitive(Primitive(
    name="sqrt", arity=1, forward=_sqrt,
    vjp=lambda g, a, out: ((g * 0.5) * reciprocal(out),),
    symbol="√", domain="x >= 0", valid=lambda a: a >= 0,
))
ABS = primitive(Primitive(
    name="abs", arity=1, forward=abs,
    vjp=lambda g, a, out: (gate(g, a) + gate(-g, -a),),
    symbol="|x|",
))
STOP_GRADIENT = primitive(Primitive(
    name="stop_gradient", arity=1, forward=lambda a: a,
    vjp=lambda g, a, out: (0.0,),
    symbol="stop", differentiable=False,
))


# --- gather: a data-dependent choice among any number of inputs (arity -1)


def _gather(i: float, *values: float) -> float:
    """``values[i]``; NaN where ``i`` is not a valid index (a forward never raises)."""
    k = int(i) if 0 <= i < len(values) else -1  # NaN and inf fail the comparison
    return values[k] if k == i else math.nan


def _gather_vjp(g: Any, i: Any, *rest: Any) -> tuple[Any, ...]:
    """All of ``g`` to the chosen input, exactly 0.0 to the others, nothing to the index."""
    n = len(rest) - 1  # rest: the values, then out
    if type(i) is float:
        return (0.0, *[g if k == i else 0.0 for k in range(n)])
    # a Value index (a graph of the derivative): the choice is recorded too, as a
    # gather of g among zeros, so it is made anew for every index a compiled
    # function sees, and the derivative can be differentiated again
    return (0.0, *[GATHER(i, *[g if j == k else 0.0 for j in range(n)]) for k in range(n)])


class _Gather(Primitive):
    """gather's entry: its domain error names the index alone, not every value."""

    def check(self, *inputs: float) -> None:
        """Raise :class:`DomainError` unless ``inputs[0]`` indexes ``inputs[1:]``."""
        if not self.valid(*inputs):  # type: ignore[misc]
            n = len(inputs) - 1
            raise DomainError(self.name, inputs[:1], f"the index must be an integer from 0 to {n - 1}, "
                              f"for {n} values" if n else "no values to choose from")


#: ``gather(i, v0, v1, ...)`` is ``v_i``: arity -1 means any number of inputs
#: (the index, then the values).  Its derivative is 1 for the chosen value
#: and 0 for the others; the index gets none: gather is not differentiable in
#: its index (it is piecewise constant there, and undefined between integers).
GATHER = primitive(_Gather(
    name="gather", arity=-1, forward=_gather,
    vjp=_gather_vjp,
    symbol="[i]", domain="an integer index i, 0 <= i < number of values",
    valid=lambda i, *values: 0 <= i < len(values) and i == int(i),
))
