"""Check derivatives against several oracles, without hypothesis.

:func:`check_grad` differentiates a function with the engine along three
paths (``Value.backward``, which fills in ``grad`` fields;
:func:`~microgrannd.gradients`, which returns a dict; and
``backward(create_graph=True)``, which runs the rules on Values) and judges
the gradient with three oracles:

* **finite differences**: central differences with Richardson extrapolation,
  one input at a time;
* **the Taylor remainder**: along a direction ``v``, the remainder
  ``f(x + h v) - f(x) - h ∇f·v`` must shrink as ``h²`` when the gradient is
  right (as ``h`` when it is wrong), measured by its slope over a range of
  steps ``h``;
* **the forward/reverse adjoint identity** ``u·(J w) = (Jᵀu)·w``: for one
  output, ``J w`` by forward mode (:func:`~microgrannd.jvp`) must equal
  ``∇f·w`` by backward.

It also checks that ``f`` gives the same number on Values as on floats.  It
tells three outcomes apart:

* the derivatives agree: it returns them (a tuple, whose ``report`` says which
  oracles agreed);
* they disagree and an oracle is sure of it: it raises
  :class:`GradcheckError` (an ``AssertionError``), whose message lists the
  mismatches, each oracle's verdict, ``f`` as code when it has a ``source``
  (a random expression), and a check of every node's local rule against
  finite differences of its forward function, which names a wrong rule and
  the input where it is wrong;
* they disagree but finite differences cannot be trusted at that point (a
  kink such as ``relu`` at 0, a nearby pole, an undefined or infinite stencil
  point): it raises :class:`NumericallyUnreliable`, or, inside a hypothesis
  test, rejects the example.

The numerical recipe, for input ``x``:

* steps ``h = cbrt(eps) * max(1, |x|)`` and about ``h / 2``; the stencil
  points ``x ± h`` are computed first and the step is taken from them, so the
  divisor is exactly the distance between the points evaluated;
* the estimate is the Richardson combination of the two central differences
  (truncation error of order ``h**4``); their disagreement measures how far
  the stencil is from its asymptotic regime;
* the tolerance is ``atol + rtol * |numeric| + noise``, where ``noise`` bounds
  the effect of rounding on the difference quotient: a first-order bound of
  the rounding error of ``f`` itself (every node contributes ``eps * |value|``
  times the absolute value of its derivative path to the output, the local
  derivatives taken by finite differences of the forward functions, not from
  the rules under test), divided by the step.
"""

from __future__ import annotations

import math
import numbers
import reprlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from microgrannd.autodiff import grad, jvp
from microgrannd.engine import Value
from microgrannd.ops import PRIMITIVES, DomainError, Primitive
from microgrannd.walk import gradients, local_derivatives, toposort

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "ORACLES",
    "PATHS",
    "Gradient",
    "GradcheckError",
    "GradcheckReport",
    "NumericallyUnreliable",
    "check_grad",
    "check_grad2",
    "numerical_grad",
]

EPS = sys.float_info.epsilon
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
# A mismatch larger than this many times the disagreement between the two
# step sizes is a wrong derivative even where the stencil is imprecise.
_CLEAR_MISS = 10.0
# Scaling a gradient by a power of two is exact unless some gradient is
# subnormal (or nearly: a rule's intermediate product may be) or near overflow.
_SCALING_LOW = sys.float_info.min * 2.0**53
_SCALING_HIGH = sys.float_info.max / 4.0
_SUBNORMAL = math.ulp(0.0)

#: The engine paths check_grad differentiates along.
PATHS = ("backward", "gradients", "create_graph")
#: The oracles check_grad judges a gradient with.
ORACLES = ("finite differences", "Taylor remainder", "forward/reverse adjoint")

# Taylor test: steps h = 1e-2 * 4**-k (times the direction's scale), a
# remainder is usable when it is this many times its rounding bound.
_TAYLOR_STEPS = tuple(1e-2 * 0.25**k for k in range(13))
_TAYLOR_USABLE = 100.0
_DIRECTION = (0.8, -1.2, 1.1, -0.7, 1.3, -0.9, 0.6, -1.4, 1.0, -1.1)

_EVAL_ERRORS = (DomainError, ArithmeticError, ValueError)


class GradcheckError(AssertionError):
    """The engine's derivative disagrees with a trustworthy reference.

    ``report`` is the :class:`GradcheckReport` of the failed check (``None``
    where the failure is not about one gradient).
    """

    def __init__(self, message: str, report: GradcheckReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class NumericallyUnreliable(Exception):
    """Finite differences cannot be trusted at this point.

    Not an ``AssertionError``: the derivative may well be right.  ``reason``
    says why (``"kink"``, ``"undefined"``, ``"unstable"``), ``message`` the
    details.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class GradcheckReport:
    """What :func:`check_grad` found at one point.

    ``gradient`` is the engine's gradient (by ``backward``), ``paths`` the
    engine paths that were compared, and ``oracles`` maps each oracle's name
    (see :data:`ORACLES`) to its verdict: a text starting with ``"agrees"``,
    ``"disagrees"``, ``"inconclusive"`` or ``"unreliable"``, followed by the
    evidence (the measured slope of the Taylor remainder, for instance).
    ``failed`` names what disagreed when the check failed: engine paths
    (``"backward"``, ``"create_graph"``, ...), ``"Values vs floats"``, or an
    oracle; it is empty when the check passed.
    """

    function: str
    inputs: tuple[float, ...]
    gradient: tuple[float, ...]
    paths: tuple[str, ...]
    oracles: dict[str, str]
    failed: tuple[str, ...] = ()

    @property
    def agreed(self) -> list[str]:
        """The names of the oracles that agreed with the engine."""
        return [name for name, verdict in self.oracles.items() if verdict.startswith("agrees")]

    def __str__(self) -> str:
        lines = [f"check_grad({self.function}) at inputs {self.inputs!r}: gradient {self.gradient!r}"]
        lines.append(f"  paths compared: {', '.join(self.paths)}")
        lines += [f"  {name}: {verdict}" for name, verdict in self.oracles.items()]
        return "\n".join(lines)


class Gradient(tuple[float, ...]):
    """The gradient :func:`check_grad` returns: a tuple of floats with the check's ``report``."""

    report: GradcheckReport

    def __new__(cls, values: Sequence[float], report: GradcheckReport) -> Gradient:
        """A tuple of ``values`` carrying ``report``."""
        self = super().__new__(cls, values)
        self.report = report
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy with the report."""
        return (Gradient, (tuple(self), self.report))


# --------------------------------------------------------------------------
# Helpers


def _name(f: Callable[..., Any]) -> str:
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
    if not name:
        if isinstance(getattr(f, "source", None), str):  # a random expression: shown as code apart
            return type(f).__name__
        return repr(f)
    code = getattr(f, "__code__", None)
    if "<lambda>" in name and code is not None:
        return f"{name} at {code.co_filename}:{code.co_firstlineno}"
    return str(name)


def _to_float(y: Any) -> float:
    return float(y.data) if isinstance(y, Value) else float(y)


def _describe(y: Any) -> str:
    if y is None:
        return "None"
    if isinstance(y, bool):
        return f"a truth value ({y!r})"
    return f"a {type(y).__name__} ({reprlib.repr(y)})"


def _result(f: Callable[..., Any], y: Any) -> float:
    """``f``'s result as a float, or a TypeError naming ``f`` and what it returned."""
    if isinstance(y, Value):
        return y.data
    if isinstance(y, numbers.Real) and not isinstance(y, bool):
        return float(y)
    raise TypeError(
        f"{_name(f)} returned {_describe(y)}: a function to check must return one Value or number"
    )


def _leaves(xs: Sequence[float]) -> list[Value]:
    return [Value(x, label=f"x{i}") for i, x in enumerate(xs)]


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class _Evaluator:
    """Calls ``f`` on floats, falling back to Values when ``f`` needs them."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.with_values = False

    def __call__(self, xs: Sequence[float]) -> float:
        if not self.with_values:
            try:
                y = self.f(*xs)
            except (TypeError, AttributeError):
                self.with_values = True
            else:
                if isinstance(y, Value) or (isinstance(y, numbers.Real) and not isinstance(y, bool)):
                    return _result(self.f, y)
                self.with_values = True  # not a real number on floats (x ** 0.5 at x < 0 is complex)
        return _result(self.f, self.f(*_leaves(xs)))


def _slopes(v: Value) -> list[float]:
    """``|d v / d parent|`` for each parent slot of interior node ``v``.

    Taken by central differences of the primitive's forward function, so that
    tolerances do not depend on the rules under test; where those are not
    finite (a pole, the edge of the domain), from the rule.
    """
    prim = PRIMITIVES.get(v.op)
    args = [p.data for p in v.parents]
    slopes: list[float] = []
    rule: tuple[Any, ...] | None = None
    for k, x in enumerate(args):
        if prim is None or k in prim.constant_args:
            slopes.append(0.0)
            continue
        h = math.cbrt(EPS) * max(1.0, abs(x))
        up, down = list(args), list(args)
        up[k], down[k] = x + h, x - h
        try:
            if prim.valid is not None and not (prim.valid(*up) and prim.valid(*down)):
                raise ValueError("outside the domain")
            d = abs((float(prim.forward(*up)) - float(prim.forward(*down))) / (up[k] - down[k]))
        except Exception:  # outside the domain; or a user's forward function that raises
            d = math.nan
        if not math.isfinite(d):
            if rule is None:
                try:
                    rule = local_derivatives(v)
                except Exception:
                    rule = ()
            d = abs(_to_float(rule[k])) if k < len(rule) else 0.0
        slopes.append(d if math.isfinite(d) else 0.0)
    return slopes


def _absolute_paths(out: Value, numeric: bool = False) -> dict[Value, float]:
    """``sum over paths of |product of local derivatives|`` from ``out`` to every node.

    An upper bound on the size of each node's gradient terms (no cancellation
    between paths).  The local derivatives come from the rules on floats, or
    with ``numeric`` from finite differences of the forward functions.
    """
    weight: dict[Value, float] = {out: 1.0}
    for v in reversed(toposort(out)):
        w = weight.get(v, 0.0)
        if not v.parents or w == 0.0 or not math.isfinite(w):
            continue
        if numeric:
            ds: Sequence[Any] = _slopes(v)
        else:
            try:
                ds = local_derivatives(v)
            except _EVAL_ERRORS:
                continue
        for p, d in zip(v.parents, ds, strict=False):
            d = abs(_to_float(d))
            if math.isfinite(d) and d:
                weight[p] = weight.get(p, 0.0) + w * d
    return weight


def _term_sizes(out: Value) -> dict[Value, float]:
    """Bound on the size of the gradient terms the engine adds up, for each node.

    The larger of the absolute paths by the rules (the terms as the engine
    computes them) and by finite differences (which a rule cannot shrink);
    used for the rounding of the engine's own sums, not for judging a rule.
    """
    by_rules = _absolute_paths(out)
    by_differences = _absolute_paths(out, numeric=True)
    return {v: max(by_rules.get(v, 0.0), by_differences.get(v, 0.0)) for v in {*by_rules, *by_differences}}


def _rounding_bound(out: Any, weight: dict[Value, float] | None = None) -> float:
    """First-order bound of the rounding error in ``out``'s value.

    Every operation may err by about one ulp of its result; that error reaches
    the output multiplied by the derivative along each path, so the bound is
    ``eps * sum(|d out/d v| * |v|)`` with the derivatives propagated in
    absolute value (no cancellation between paths); ``weight`` is
    ``_absolute_paths(out, numeric=True)`` if already computed.
    """
    if not isinstance(out, Value):
        return EPS * abs(_to_float(out))
    if weight is None:
        weight = _absolute_paths(out, numeric=True)
    total = sum(w * abs(v.data) for v, w in weight.items() if v.parents and math.isfinite(w))
    return 2.0 * EPS * total if math.isfinite(total) else 0.0


@dataclass
class _Estimate:
    """Central differences for one input, with what is needed to judge them."""

    value: float  # Richardson estimate
    uncertainty: float  # |D(h) - D(h/2)|
    noise: float  # rounding bound on the estimate
    kink: float  # one-sided slopes' disagreement that does not shrink with h (0 if none)
    problem: str  # why the stencil is unusable ("" if it is fine)


def _estimate(ev: Callable[[Sequence[float]], float], xs: Sequence[float], i: int, f0: float,
              noise_f: float) -> _Estimate:
    x = xs[i]
    h0 = math.cbrt(EPS) * max(1.0, abs(x))
    points = [x + h0, x - h0, x + h0 / 2, x - h0 / 2]
    values: list[float] = []
    for p in points:
        moved = list(xs)
        moved[i] = p
        try:
            y = ev(moved)
        except _EVAL_ERRORS as e:
            return _Estimate(math.nan, math.inf, math.inf, 0.0, f"f is undefined at x{i} = {p!r} ({e})")
        if not math.isfinite(y):
            return _Estimate(math.nan, math.inf, math.inf, 0.0, f"f({p!r}) is {y!r} for x{i}")
        values.append(y)
    if not math.isfinite(f0):
        return _Estimate(math.nan, math.inf, math.inf, 0.0, f"f is {f0!r} at the point")
    fp, fm, fp2, fm2 = values
    step1 = points[0] - points[1]
    step2 = points[2] - points[3]
    d1 = (fp - fm) / step1
    d2 = (fp2 - fm2) / step2
    r2 = (step1 / step2) ** 2
    value = (r2 * d2 - d1) / (r2 - 1.0)
    scale = noise_f + EPS * max(abs(v) for v in (*values, f0))
    noise = 2.0 * scale / step2 * (r2 + 1.0) / (r2 - 1.0)
    # one-sided slopes: for a smooth f they differ by about f'' * h, which
    # halves with the step; across a kink they differ by the jump, which does not
    j1 = abs(fp - 2.0 * f0 + fm) / (step1 / 2)
    j2 = abs(fp2 - 2.0 * f0 + fm2) / (step2 / 2)
    j_noise = 8.0 * scale / step2
    kink = j1 if j1 > j_noise and j2 > 0.75 * j1 else 0.0
    if not math.isfinite(value):
        return _Estimate(value, math.inf, math.inf, kink, f"the difference quotient for x{i} is {value!r}")
    return _Estimate(value, abs(d1 - d2), noise, kink, "")


def _unreliable(message: str, reason: str, reject: bool) -> NumericallyUnreliable:
    """Reject the current hypothesis example, or return the exception to raise."""
    hyp = sys.modules.get("hypothesis")
    if reject and hyp is not None and hyp.currently_in_test_context():
        hyp.event(f"gradcheck: numerically unreliable ({reason})")
        hyp.reject()
    return NumericallyUnreliable(message, reason)


# --------------------------------------------------------------------------
# The Taylor remainder


def _direction(xs: Sequence[float]) -> list[float]:
    """A fixed direction with unequal components, scaled like the inputs."""
    return [_DIRECTION[i % len(_DIRECTION)] * max(1.0, abs(x)) for i, x in enumerate(xs)]


@dataclass
class _Step:
    h: float
    moves: list[float]  # the actual displacement of each input
    value: float | None  # f(x + h v), None where undefined or not finite


def _taylor_steps(ev: Callable[[Sequence[float]], float], xs: Sequence[float], v: Sequence[float]) -> list[_Step]:
    steps = []
    for h in _TAYLOR_STEPS:
        moved = [x + h * d for x, d in zip(xs, v, strict=True)]
        y: float | None
        try:
            y = ev(moved)
        except _EVAL_ERRORS:
            y = None
        if y is not None and not math.isfinite(y):
            y = None
        steps.append(_Step(h, [m - x for m, x in zip(moved, xs, strict=True)], y))
    return steps


def _taylor(steps: Sequence[_Step], f0: float, noise_f: float, g: Sequence[float], tol: float) -> str:
    """The Taylor remainder's verdict on gradient ``g``: 'agrees ...', 'disagrees ...' or 'inconclusive ...'."""
    if not all(math.isfinite(c) for c in g):
        return "inconclusive: the gradient is not finite"
    rem: list[tuple[float, float, float] | None] = []  # (h, remainder, its rounding bound)
    for s in steps:
        if s.value is None:
            rem.append(None)
            continue
        linear = math.fsum(c * d for c, d in zip(g, s.moves, strict=True))
        e = s.value - f0 - linear
        bound = 2.0 * noise_f + 2.0 * EPS * (abs(f0) + abs(s.value) + abs(linear))
        rem.append((s.h, e, bound))

    def usable(r: tuple[float, float, float] | None) -> bool:
        return r is not None and abs(r[1]) > _TAYLOR_USABLE * r[2]

    for k in range(len(rem) - 1, 1, -1):  # the smallest steps first: the most asymptotic
        trio = rem[k - 2 : k + 1]
        if not all(usable(r) for r in trio):
            continue
        (h0, e0, _), (h1, e1, _), (h2, e2, _) = trio  # type: ignore[misc]
        slope = math.log(abs(e1 / e2)) / math.log(h1 / h2)
        r1, r2 = (e1 / h1) / (e0 / h0), (e2 / h2) / (e1 / h1)
        if 0.8 <= r1 <= 1.25 and 0.8 <= r2 <= 1.25:  # the remainder is linear in h
            delta = e2 / h2
            if k + 1 < len(rem):  # the next, smaller step must continue the line (a kink crossed would not)
                nxt = rem[k + 1]
                if nxt is None or abs(nxt[1] - delta * nxt[0]) > 0.5 * abs(delta * nxt[0]) + 2.0 * nxt[2]:
                    return f"inconclusive: the remainder shrinks as h^{slope:.2f}, then breaks off"
            if abs(delta) <= tol:
                return f"agrees (the remainder is linear in h, but its slope {delta:.3g} is within the tolerance)"
            return f"disagrees (the remainder shrinks as h^{slope:.2f}, not h^2: ∇f·v is off by {delta:.3g})"
        if 0.0 < r1 <= 0.4 and 0.0 < r2 <= 0.4:
            return f"agrees (the remainder shrinks as h^{slope:.2f})"
        return f"inconclusive: the remainder shrinks irregularly (as h^{slope:.2f} at the smallest steps)"
    defined = [r for r in rem if r is not None]
    if defined and not any(usable(r) for r in defined):
        h, _, bound = defined[0]
        if _TAYLOR_USABLE * bound / h <= tol:
            return "agrees (the remainder stays at rounding level: f is linear along v)"
    return "inconclusive: too few steps where the remainder is above rounding"


# --------------------------------------------------------------------------
# Per-node local rules, for failure messages


def _call_text(prim: Primitive, args: Sequence[float]) -> str:
    return f"{prim.name}({', '.join(repr(a) for a in args)})"


def _forward(prim: Primitive, args: Sequence[float], free: Sequence[int]) -> Callable[[Sequence[float]], float]:
    """``prim``'s forward function of its free inputs; outside the domain it raises DomainError."""

    def forward(xs: Sequence[float]) -> float:
        full = list(args)
        for k, x in zip(free, xs, strict=True):
            full[k] = x
        prim.check(*full)
        y = prim.forward(*full)
        if not isinstance(y, float | int):
            raise ValueError(f"{prim.name}'s forward function gave {y!r}")
        return float(y)

    return forward


def _rule_verdict(prim: Primitive, args: tuple[float, ...], rtol: float,
                  atol: float, order: int = 1) -> tuple[str, list[str]]:
    """Judge ``prim``'s rule at ``args`` on its own: ('wrong' | 'agrees' | 'unjudged', lines).

    The rule is called directly, on floats and on Values (no backward pass),
    and compared with finite differences of the forward function, or where
    those are unstable, with the Taylor remainder.  With ``order=2`` the
    rule's result on Values is also differentiated and compared with finite
    differences of the rule on floats.
    """
    call = _call_text(prim, args)
    out = prim.forward(*args)
    free = [k for k in range(prim.arity) if k not in prim.constant_args]
    try:
        on_floats = [_to_float(d) for d in prim.derivatives(*args, out)]
    except Exception as e:
        return "wrong", [f"    {call}: the rule raised {type(e).__name__} on floats: {e}"]
    try:
        inputs: list[Any] = [a if k in prim.constant_args else Value(a) for k, a in enumerate(args)]
        table = gradients(prim(*inputs), create_graph=True)
        on_values = [_to_float(table.get(x, 0.0)) if isinstance(x, Value) else 0.0 for x in inputs]
    except Exception as e:
        return "wrong", [f"    {call}: the rule raised {type(e).__name__} on Values: {e}"]
    ev = _forward(prim, args, free)
    xs = [args[k] for k in free]
    noise = EPS * abs(out)
    estimates = [_estimate(ev, xs, i, out, noise) for i in range(len(xs))]
    tolerances = [atol + rtol * abs(e.value) + e.noise for e in estimates]
    v = _direction(xs)
    steps: list[_Step] | None = None
    wrong: dict[str, str] = {}  # "floats" / "Values" -> how it was decided
    unjudged = False
    for label, ds in (("floats", on_floats), ("Values", on_values)):
        d = [ds[k] for k in free]
        unstable = False
        for di, est, tol in zip(d, estimates, tolerances, strict=True):
            diff = abs(di - est.value)
            if diff <= tol:
                continue
            if est.problem or est.kink:
                unjudged = True
            elif not math.isfinite(di) or diff > tol + _CLEAR_MISS * est.uncertainty:
                wrong[label] = "finite differences"
            else:
                unstable = True
        if unstable and label not in wrong:
            if steps is None:
                steps = _taylor_steps(ev, xs, v)
            tol_v = math.fsum(t * abs(c) for t, c in zip(tolerances, v, strict=True))
            if _taylor(steps, out, noise, d, tol_v).startswith("disagrees"):
                wrong[label] = "the Taylor remainder"
            else:
                unjudged = True
    if not wrong:
        if order == 2 and not unjudged:
            return _rule_slope_verdict(prim, args, free, table, inputs, rtol, atol)
        return ("unjudged" if unjudged else "agrees"), []
    where = " and ".join(f"on {w}" for w in wrong)
    how = " (by the Taylor remainder)" if "the Taylor remainder" in wrong.values() else ""
    lines = []
    for i, k in enumerate(free):
        lines.append(
            f"    {call}, input {k}: the rule gives {on_floats[k]!r} on floats and {on_values[k]!r} on Values, "
            f"finite differences {estimates[i].value!r}: {prim.name}'s rule is wrong {where}{how}")
    return "wrong", lines


def _rule_slope_verdict(prim: Primitive, args: tuple[float, ...], free: list[int], table: dict[Any, Any],
                        inputs: list[Any], rtol: float, atol: float) -> tuple[str, list[str]]:
    """The rule's result on Values, differentiated, against finite differences of the rule on floats."""
    call = _call_text(prim, args)
    xs = [args[k] for k in free]
    lines = []
    unjudged = False
    for k in free:
        d = table.get(inputs[k], 0.0)
        slopes = gradients(d) if isinstance(d, Value) and d.requires_grad else {}
        analytic = [_to_float(slopes.get(inputs[j], 0.0)) for j in free]

        def rule_k(zs: Sequence[float], k: int = k) -> float:
            full = list(args)
            for j, z in zip(free, zs, strict=True):
                full[j] = z
            prim.check(*full)
            return _to_float(prim.derivatives(*full, prim.forward(*full))[k])

        r0 = rule_k(xs)
        for i, j in enumerate(free):
            est = _estimate(rule_k, xs, i, r0, EPS * abs(r0))
            tol = atol + rtol * abs(est.value) + est.noise
            diff = abs(analytic[i] - est.value)
            if diff <= tol:
                continue
            if est.problem or est.kink or (math.isfinite(analytic[i]) and diff <= tol + _CLEAR_MISS * est.uncertainty):
                unjudged = True
                continue
            lines.append(
                f"    {call}: the derivative of the rule's entry {k} with respect to input {j} is "
                f"{analytic[i]!r} on Values, but finite differences of the rule on floats give {est.value!r}: "
                f"{prim.name}'s rule on Values does not carry its own derivative (does it read .data, "
                "or compute on floats?)")
    if lines:
        return "wrong", lines
    return ("unjudged" if unjudged else "agrees"), []


def _local_rules(f: Callable[..., Any], xs: Sequence[float], rtol: float, atol: float,
                 order: int = 1) -> list[str]:
    """Each node's local rule against finite differences of its primitive's forward function."""
    try:
        out = f(*_leaves(xs))
    except Exception:
        return []
    if not isinstance(out, Value):
        return []
    seen: set[tuple[str, tuple[float, ...]]] = set()
    wrong: list[str] = []
    unjudged = 0
    for v in toposort(out):
        prim = PRIMITIVES.get(v.op) if v.parents else None
        if prim is None or not prim.differentiable:
            continue
        args = tuple(p.data for p in v.parents)
        if (v.op, args) in seen:
            continue
        seen.add((v.op, args))
        verdict, lines = _rule_verdict(prim, args, rtol, atol, order)
        wrong += lines
        unjudged += verdict == "unjudged"
    if not seen:
        return []
    if wrong:
        head = "  local rules (each node's rule checked on its own against its forward function):"
        if order == 2:
            head = "  local rules of f (each node's rule, and its derivative on Values, checked on its own):"
        return [head, *wrong[:8], *(["    ..."] if len(wrong) > 8 else [])]
    agree = len(seen) - unjudged
    what = "their forward functions" if order == 1 else "their forward functions, at first and second order"
    text = f"  local rules: {agree} of {len(seen)} nodes' rules agree with {what}, on floats and on Values"
    if unjudged:
        text += f"; {unjudged} could not be judged on their own (a kink, a pole or the edge of a domain)"
    return [text]


def _source_lines(f: Callable[..., Any]) -> list[str]:
    source = getattr(f, "source", None)
    if not isinstance(source, str) or not source:
        return []
    return ["  f as code:", *(f"    {line}" for line in source.splitlines())]


# --------------------------------------------------------------------------
# Public API


def numerical_grad(f: Callable[..., Any], inputs: Sequence[float]) -> list[float]:
    """Finite-difference gradient of ``f`` at ``inputs`` (float64).

    ``f`` takes one number per input and returns a number (or a Value); it is
    called with floats, or with Values if it does not accept floats.  Each
    partial derivative is the Richardson combination of central differences
    with steps ``cbrt(eps) * max(1, |x|)`` and half that.  Raises
    :class:`NumericallyUnreliable` if ``f`` is undefined or not finite at a
    stencil point.
    """
    xs = [float(x) for x in inputs]
    ev = _Evaluator(f)
    f0 = ev(xs)
    result = []
    for i in range(len(xs)):
        est = _estimate(ev, xs, i, f0, EPS * abs(f0))
        if est.problem:
            raise NumericallyUnreliable(est.problem, "undefined")
        result.append(est.value)
    return result


def _analytic(
    f: Callable[..., Any], xs: Sequence[float], path: str, seed: float = 1.0
) -> tuple[Any, list[Value], list[Any]]:
    """Build ``f`` on fresh leaves and differentiate it along one engine path."""
    leaves = _leaves(xs)
    out = f(*leaves)
    _result(f, out)
    if not isinstance(out, Value) or not out.requires_grad:  # a constant: nothing depends on the inputs
        return out, leaves, [0.0 for _ in leaves]
    if path == "backward":
        out.backward(seed)
        return out, leaves, [v.grad for v in leaves]
    if path == "create_graph":
        out.backward(seed, create_graph=True)
        grads = [_to_float(v.grad) for v in leaves]
        out.zero_grad()  # the gradient graphs refer back to their nodes: drop them
        return out, leaves, grads
    table = gradients(out, seed)
    return out, leaves, [table.get(v, 0.0) for v in leaves]


def _scaling_hazard(out: Value) -> str:
    """'' if scaling the seed scales every gradient exactly; else why not ('underflow', 'overflow')."""
    for g in gradients(out).values():
        g = _to_float(g)
        if not math.isfinite(g) or abs(g) > _SCALING_HIGH:
            return "overflow"
        if g != 0.0 and abs(g) < _SCALING_LOW:
            return "underflow"
    return ""


def _extra_checks(f: Callable[..., Any], xs: Sequence[float], plain: dict[str, list[float]],
                  rtol: float, atol: float) -> list[str]:
    """What gradcheck checks beyond the numbers; returns the problems found."""
    problems: list[str] = []
    leaves = _leaves(xs)
    out = f(*leaves)
    reached = set(toposort(out)) if isinstance(out, Value) else set()
    for path, grads in plain.items():
        for i, v in enumerate(leaves):
            if v not in reached and not (grads[i] == 0.0 and isinstance(grads[i], float)):
                problems.append(
                    f"input {i} does not reach the output but its gradient ({path}) is {grads[i]!r}, not 0.0"
                )
    for path, grads in plain.items():
        _, _, again = _analytic(f, xs, path)
        for i, (a, b) in enumerate(zip(grads, again, strict=True)):
            if not _same(a, b):
                problems.append(f"input {i}: {path} on a fresh graph gave {b!r}, the first time {a!r}")
    seed = -2.0  # a power of two: scaling by it is exact, barring underflow and overflow
    hazard = _scaling_hazard(out) if isinstance(out, Value) and out.requires_grad else ""
    for path, grads in plain.items():
        _, _, seeded = _analytic(f, xs, path, seed)
        for i, (a, b) in enumerate(zip(grads, seeded, strict=True)):
            expected = seed * a
            if _same(b, expected) or hazard == "overflow" or not math.isfinite(expected):
                continue
            if hazard == "underflow" and abs(b - expected) <= atol + rtol * abs(expected):
                continue  # a subnormal gradient on the way: its rounding does not scale
            problems.append(f"input {i}: {path} seeded with {seed} gave {b!r}, expected {seed} * {a!r}")
    if isinstance(out, Value) and out.requires_grad:
        out.backward()
        first = [_to_float(v.grad) for v in leaves]
        out.backward()
        # the second backward adds each contribution again, one by one, so
        # the sum may differ from 2 * first by rounding of the terms' size
        scale = _term_sizes(out)
        terms = len(reached)
        for i, v in enumerate(leaves):
            tol = 8.0 * EPS * scale.get(v, 0.0) + 8.0 * _SUBNORMAL * terms
            if math.isfinite(first[i]) and not abs(_to_float(v.grad) - 2.0 * first[i]) <= tol:
                problems.append(
                    f"input {i}: a second backward on the same graph gave {v.grad!r}, "
                    f"expected the first ({first[i]!r}) accumulated twice"
                )
    return problems


_SCALES = (2.0**-16, 2.0**-64, 2.0**-256)  # exact: a scaled direction scales J u exactly, barring overflow


def _adjoint(f: Callable[..., Any], xs: Sequence[float], g: Sequence[float], leaves: Sequence[Value],
             weights: dict[Value, float], rtol: float, atol: float) -> tuple[str, bool]:
    """The adjoint identity's verdict, forward mode's ``J w`` against backward's ``∇f·w``; both finite?

    ``w`` has components of order one.  Forward mode carries tangents from
    the inputs and may overflow where backward, which starts from the
    output, does not (in the second derivative of ``softplus(3 x)`` at
    ``x = -236.5`` a tangent ``2.4 * exp(709.5)`` appears); ``J w`` is linear
    in ``w``, so there it is compared along ``w`` scaled by a power of two.
    """
    w = [_DIRECTION[i % len(_DIRECTION)] for i in range(len(xs))]
    gw = math.fsum(c * d for c, d in zip(g, w, strict=True))
    tol = (atol + rtol * math.fsum(abs(c * d) for c, d in zip(g, w, strict=True))
           + 64.0 * EPS * math.fsum(abs(d) * weights.get(x, 0.0) for d, x in zip(w, leaves, strict=True)))
    tangent = _to_float(jvp(f, xs, w)[1])
    scale = 1.0
    if not math.isfinite(tangent) and math.isfinite(gw):
        for s in _SCALES:
            scaled = _to_float(jvp(f, xs, [s * d for d in w])[1])
            if math.isfinite(scaled):
                tangent, scale = scaled / s, s
                break
    finite = math.isfinite(tangent) and math.isfinite(gw)
    if abs(tangent - gw) <= tol:
        scaled_note = ", along a scaled w: forward mode overflows along w" if scale != 1 else ""
        return f"agrees (mg.jvp's J·w equals backward's ∇f·w{scaled_note})", finite
    if _same(tangent, gw):
        return f"agrees (mg.jvp and backward both give {gw!r})", finite
    along = f" along w = {tuple(w)!r}"
    if scale != 1:
        along += f" (forward mode overflows: compared along {scale!r} w)"
    return (f"disagrees (mg.jvp gives J·w = {tangent!r}, backward gives ∇f·w = {gw!r}{along}, "
            f"difference {abs(tangent - gw):.3g}, tolerance {tol:.3g})"), finite


def _fd_verdict(failed: bool, reasons: set[str]) -> str:
    if failed:
        return "disagrees"
    if reasons:
        return f"unreliable ({', '.join(sorted(reasons))})"
    return "agrees (central differences with Richardson extrapolation)"


def check_grad(
    f: Callable[..., Any],
    inputs: Sequence[float],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    extra_checks: bool = True,
    reject_unreliable: bool = True,
) -> Gradient:
    """Check the engine's derivatives of ``f`` at ``inputs``; return them.

    ``f`` takes one Value per input and returns a Value (a plain number means
    a constant function).  The gradient is computed along every path of
    :data:`PATHS` (``Value.backward``, :func:`~microgrannd.gradients`, and
    ``backward(create_graph=True)``, which runs the rules on Values), and
    judged by the oracles of :data:`ORACLES`: finite differences (a partial
    derivative passes when ``|analytic - numeric| <= atol + rtol * |numeric|
    + noise``, ``noise`` being a bound on the effect of rounding), the Taylor
    remainder along a direction ``v`` (it must shrink as ``h²``), and the
    adjoint identity between forward mode (:func:`~microgrannd.jvp`) and
    backward.  ``f`` must also give the same number on Values as on floats
    (when it accepts floats).

    With ``extra_checks`` it also checks that inputs the output does not
    depend on get exactly 0.0, that differentiating a fresh graph again gives
    identical numbers, that a seeded ``backward(s)`` gives exactly ``s`` times
    the gradient (within the tolerance where a gradient on the way is
    subnormal), and that a second ``backward`` on the same graph doubles the
    inputs' gradients.

    Returns a :class:`Gradient`: the tuple of partial derivatives, with a
    ``report`` (:class:`GradcheckReport`) saying which oracles agreed.
    Raises :class:`GradcheckError` on a mismatch (the message names the
    function, the inputs, and per mismatched input and path the analytic and
    numeric values, their difference and the tolerance; then each oracle's
    verdict and every node's local rule checked against finite differences)
    and :class:`NumericallyUnreliable` where finite differences cannot
    decide.  Inside a hypothesis test an unreliable point is rejected instead
    (with ``reject_unreliable``), so it neither fails nor counts as a passing
    example.  A ``TypeError`` names ``f`` if it returns something other than
    one Value or number.
    """
    xs = [float(x) for x in inputs]
    n = len(xs)
    name = _name(f)
    analytic: dict[str, list[float]] = {}
    built: tuple[Any, list[Value]] | None = None
    for path in PATHS:
        out, leaves, grads = _analytic(f, xs, path)
        analytic[path] = [_to_float(g) for g in grads]
        if built is None:
            built = (out, leaves)
    assert built is not None
    out, leaves = built
    ev = _Evaluator(f)
    f_values = _result(f, out)
    f0 = ev(xs)  # the value the stencil is compared with, computed the same way as the stencil
    weights = _absolute_paths(out, numeric=True) if isinstance(out, Value) else {}
    noise_f = _rounding_bound(out, weights)
    lines: list[str] = []
    failed: list[str] = []  # what disagreed
    doubts: dict[str, tuple[str, str]] = {}  # details -> (reason, path)

    if not ev.with_values:
        tol = atol + rtol * abs(f0) + 4.0 * noise_f
        if not (abs(f_values - f0) <= tol or _same(f_values, f0)):
            failed.append("Values vs floats")
            lines.append(
                f"  value [Values vs floats]: {f_values!r} on Values, {f0!r} on floats, "
                f"difference {abs(f_values - f0):.3g}, tolerance {tol:.3g}"
            )

    # oracle 1: finite differences, input by input
    estimates = [_estimate(ev, xs, i, f0, noise_f) for i in range(n)]
    tolerances = [atol + rtol * abs(est.value) + est.noise for est in estimates]
    fd_failed: set[str] = set()
    reasons: dict[str, set[str]] = {path: set() for path in PATHS}
    for i, est in enumerate(estimates):
        tol = tolerances[i]
        rows: dict[str, tuple[list[str], str]] = {}  # repr(analytic) -> (paths, line)
        for path in PATHS:
            a = analytic[path][i]
            diff = abs(a - est.value)
            if diff <= tol:
                continue
            if est.problem:
                reason, detail = "undefined", f"input {i}: {est.problem}"
            elif est.kink:
                reason, detail = "kink", (
                    f"input {i}: a kink (or a pole inside the stencil) near x{i} = {xs[i]!r} "
                    f"(one-sided slopes differ by {est.kink:.3g} and do not converge as the step halves)")
            elif not math.isfinite(a) or diff > tol + _CLEAR_MISS * est.uncertainty:
                note = ""
                if est.uncertainty > tol:
                    note = f" (central differences at h and h/2 differ by {est.uncertainty:.3g})"
                key = repr(a)
                if key in rows:
                    rows[key][0].append(path)
                else:
                    rows[key] = ([path], f"analytic {a!r}, numeric {est.value!r}, difference {diff:.3g}, "
                                         f"tolerance {tol:.3g}{note}")
                fd_failed.add(path)
                continue
            else:
                reason, detail = "unstable", (
                    f"input {i}: central differences at h and h/2 differ by {est.uncertainty:.3g}, "
                    f"more than the tolerance {tol:.3g} (curvature or a pole near x{i} = {xs[i]!r})")
            reasons[path].add(reason)
            doubts.setdefault(detail, (reason, path))
        for paths, text in rows.values():
            lines.append(f"  input {i} [{', '.join(paths)}]: {text}")

    # the paths against each other
    for path in PATHS[1:]:
        label = "gradients()" if path == "gradients" else path
        for i, (a, b) in enumerate(zip(analytic["backward"], analytic[path], strict=True)):
            tol = atol + rtol * max(abs(a), abs(b))
            if not (abs(a - b) <= tol or _same(a, b)):
                failed.append(f"backward vs {path}")
                lines.append(f"  input {i} [backward vs {path}]: analytic {a!r}, {label} {b!r}, "
                             f"difference {abs(a - b):.3g}, tolerance {tol:.3g}")

    # oracle 2: the Taylor remainder along a direction v
    v = _direction(xs)
    steps = _taylor_steps(ev, xs, v) if n else []
    tol_v = math.fsum(t * abs(c) for t, c in zip(tolerances, v, strict=True))
    if not math.isfinite(tol_v):
        tol_v = math.inf
    taylor: dict[str, str] = {}
    decided: dict[str, list[str]] = {}  # the Taylor test's evidence -> the paths it decides
    for path in PATHS:
        verdict = _taylor(steps, f0, noise_f, analytic[path], tol_v) if n else "agrees (no inputs)"
        if verdict.startswith("disagrees") and path not in fd_failed:
            if reasons[path] and reasons[path] <= {"unstable"}:
                # finite differences lean the same way but cannot be sure: the Taylor test is
                failed.append(path)
                decided.setdefault(verdict[len("disagrees "):].strip("()"), []).append(path)
            else:
                verdict = "inconclusive: " + verdict[len("disagrees "):].strip("()") + (
                    ", but finite differences agree (a kink or a pole along v?)" if not reasons[path]
                    else ", where finite differences are unreliable")
        taylor[path] = verdict
    for evidence, paths in decided.items():
        lines.append(f"  Taylor remainder [{', '.join(paths)}]: {evidence} "
                     f"(along v = {tuple(v)!r}; finite differences are unstable here)")

    # oracle 3: forward mode against backward, J w = ∇f·w
    adjoint = "agrees (no inputs)"
    if n:
        sizes = _term_sizes(out) if isinstance(out, Value) else {}
        adjoint, finite = _adjoint(f, xs, analytic["backward"], leaves, sizes, rtol, atol)
        if adjoint.startswith("disagrees"):
            evidence = adjoint[len("disagrees ("):-1]
            if finite or not (reasons["backward"] or fd_failed):
                failed.append("forward/reverse adjoint")
                lines.append(f"  forward/reverse adjoint: {evidence}")
            else:  # inf or NaN where finite differences cannot judge either
                adjoint = f"unreliable: {evidence}, where finite differences cannot judge"

    verdicts = {
        "finite differences": _fd_verdict(bool(fd_failed), set().union(*reasons.values())),
        "Taylor remainder": _summarise(taylor),
        "forward/reverse adjoint": adjoint,
    }
    failed = [p for p in PATHS if p in fd_failed] + failed
    report = GradcheckReport(name, tuple(xs), tuple(analytic["backward"]), PATHS, verdicts,
                             tuple(dict.fromkeys(failed)))
    if lines:
        message = [f"check_grad({name}) at inputs {tuple(xs)!r}: derivatives disagree", *lines]
        message += [f"  (also unreliable: {d})" for d in doubts]
        message.append("  oracles: " + "; ".join(f"{k}: {_status(v)}" for k, v in verdicts.items()))
        message += _source_lines(f)
        message += _local_rules(f, xs, rtol, atol)
        raise GradcheckError("\n".join(message), report)
    if doubts:
        message = [f"check_grad({name}) at inputs {tuple(xs)!r}: finite differences are unreliable here"]
        message += [f"  {d}" for d in doubts]
        first_reason = next(iter(doubts.values()))[0]
        raise _unreliable("\n".join(message), first_reason, reject_unreliable)
    if extra_checks:
        plain = {path: analytic[path] for path in ("backward", "gradients")}
        problems = _extra_checks(f, xs, plain, rtol, atol)
        if problems:
            message = [f"check_grad({name}) at inputs {tuple(xs)!r}: the engine's bookkeeping is wrong"]
            message += [f"  {p}" for p in problems]
            report = GradcheckReport(name, tuple(xs), tuple(analytic["backward"]), PATHS, verdicts,
                                     ("bookkeeping",))
            raise GradcheckError("\n".join(message), report)
    return Gradient(analytic["backward"], report)


def _status(verdict: str) -> str:
    """The first word of a verdict: agrees, disagrees, inconclusive or unreliable."""
    return verdict.split(" ", 1)[0].rstrip(":")


def _summarise(per_path: dict[str, str]) -> str:
    """One verdict for the paths: the first path's, unless another path's differs."""
    verdicts = list(dict.fromkeys(per_path.values()))
    if len(verdicts) == 1:
        return verdicts[0]
    for verdict in verdicts:
        if verdict.startswith("disagrees"):
            paths = [p for p, v in per_path.items() if v == verdict]
            return f"{verdict} [{', '.join(paths)}]"
    return per_path[PATHS[0]]


def _hessian_by_backward(f: Callable[..., Any], xs: Sequence[float], i: int) -> list[float]:
    """Row ``i`` of the Hessian through ``backward(create_graph=True)`` and the grad fields."""
    leaves = _leaves(xs)
    out = f(*leaves)
    if not isinstance(out, Value) or not out.requires_grad:
        return [0.0] * len(xs)
    out.backward(create_graph=True)
    gi = leaves[i].grad
    for v in leaves:
        v.grad = 0.0
    if not isinstance(gi, Value) or not gi.requires_grad:
        return [0.0] * len(xs)
    gi.backward()
    return [_to_float(v.grad) for v in leaves]


def check_grad2(
    f: Callable[..., Any],
    inputs: Sequence[float],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    reject_unreliable: bool = True,
) -> list[list[float]]:
    """Check first and second derivatives of ``f`` at ``inputs``; return the Hessian.

    The first derivatives are checked by :func:`check_grad` (a second
    derivative is only right if the first one is).  Then row ``i`` of the
    Hessian is computed twice, with ``grad(grad(f, i), j)`` and with
    ``backward(create_graph=True)`` followed by a backward of the resulting
    gradient, and each is compared with finite differences of the first
    derivative ``grad(f, i)`` by ``check_grad(grad(f, i))``, which also
    compares ``grad(f, i)`` on Values (the rules run on Values) with
    ``grad(f, i)`` on floats, and forward over reverse (``jvp`` of
    ``grad(f, i)``) with reverse over reverse.  Mixed partials must be
    symmetric: ``H[i][j]`` and ``H[j][i]`` agree within
    ``atol + rtol * max(|.|)``.  Failures raise :class:`GradcheckError`,
    unreliable points :class:`NumericallyUnreliable` (rejected inside
    hypothesis), as in :func:`check_grad`.
    """
    xs = [float(x) for x in inputs]
    check_grad(f, xs, rtol=rtol, atol=atol, extra_checks=False, reject_unreliable=reject_unreliable)
    return _second_order(f, xs, rtol=rtol, atol=atol, reject_unreliable=reject_unreliable)


def _second_order(
    f: Callable[..., Any], xs: list[float], *, rtol: float, atol: float, reject_unreliable: bool
) -> list[list[float]]:
    """check_grad2 without its first-order check."""
    n = len(xs)
    hessian: list[list[float]] = []
    everything = tuple(range(n))
    def explained(e: GradcheckError | str) -> GradcheckError:
        lines = _local_rules(f, xs, rtol, atol, order=2)
        report = e.report if isinstance(e, GradcheckError) else None
        return GradcheckError("\n".join([str(e), *lines]), report)

    for i in range(n):
        first = grad(f, argnums=i)
        first.__qualname__ = f"grad({_name(f)}, argnums={i})"
        try:
            row = check_grad(
                first, xs, rtol=rtol, atol=atol, extra_checks=False, reject_unreliable=reject_unreliable
            )
        except GradcheckError as e:
            raise explained(e) from e
        nested = [_to_float(g) for g in grad(first, argnums=everything)(*xs)]
        by_backward = _hessian_by_backward(f, xs, i)
        problems = []
        for j in range(n):
            tol = atol + rtol * max(abs(row[j]), abs(nested[j]), abs(by_backward[j]))
            candidates = (("grad(grad(f))", nested[j]), ("backward(create_graph=True)", by_backward[j]))
            for label, value in candidates:
                if not (abs(value - row[j]) <= tol or _same(value, row[j])):
                    problems.append(f"  H[{i}][{j}] by {label}: {value!r}, by check_grad: {row[j]!r}")
        if problems:
            raise explained(
                f"check_grad2({_name(f)}) at inputs {tuple(xs)!r}: second derivatives disagree\n"
                + "\n".join(problems)
            )
        hessian.append(list(row))
    for i in range(n):
        for j in range(i):
            a, b = hessian[i][j], hessian[j][i]
            tol = atol + rtol * max(abs(a), abs(b))
            if not abs(a - b) <= tol:
                raise GradcheckError(
                    f"check_grad2({_name(f)}) at inputs {tuple(xs)!r}: mixed partials are not symmetric: "
                    f"H[{i}][{j}] = {a!r}, H[{j}][{i}] = {b!r}, "
                    f"difference {abs(a - b):.3g}, tolerance {tol:.3g}"
                )
    return hessian
