"""Check derivatives against finite differences, without hypothesis.

:func:`check_grad` differentiates a function with the engine, twice (through
``Value.backward``, which fills in ``grad`` fields, and through
:func:`~microgrannd.gradients`, which returns a dict), and compares both with
central differences.  It tells three outcomes apart:

* the derivatives agree within the tolerance: it returns them;
* they disagree and the finite differences are trustworthy: it raises
  :class:`GradcheckError` (an ``AssertionError``);
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
  times the absolute value of its derivative path to the output), divided by
  the step.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from microgrannd.autodiff import grad
from microgrannd.engine import Value
from microgrannd.ops import DomainError
from microgrannd.walk import gradients, local_derivatives, toposort

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "GradcheckError",
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

_EVAL_ERRORS = (DomainError, ArithmeticError, ValueError)


class GradcheckError(AssertionError):
    """The engine's derivative disagrees with a trustworthy reference."""


class NumericallyUnreliable(Exception):
    """Finite differences cannot be trusted at this point.

    Not an ``AssertionError``: the derivative may well be right.  ``reason``
    says why (``"kink"``, ``"undefined"``, ``"unstable"``), ``message`` the
    details.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------
# Helpers


def _name(f: Callable[..., Any]) -> str:
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
    if not name:
        return repr(f)
    code = getattr(f, "__code__", None)
    if "<lambda>" in name and code is not None:
        return f"{name} at {code.co_filename}:{code.co_firstlineno}"
    return str(name)


def _to_float(y: Any) -> float:
    return float(y.data) if isinstance(y, Value) else float(y)


def _leaves(xs: Sequence[float]) -> list[Value]:
    return [Value(x, label=f"x{i}") for i, x in enumerate(xs)]


class _Evaluator:
    """Calls ``f`` on floats, falling back to Values when ``f`` needs them."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.with_values = False

    def __call__(self, xs: Sequence[float]) -> float:
        if not self.with_values:
            try:
                return _to_float(self.f(*xs))
            except (TypeError, AttributeError):
                self.with_values = True
        return _to_float(self.f(*_leaves(xs)))


def _absolute_paths(out: Value) -> dict[Value, float]:
    """``sum over paths of |product of local derivatives|`` from ``out`` to every node.

    An upper bound on the size of each node's gradient terms (no cancellation
    between paths); computed with the primitive table's rules on floats.
    """
    weight: dict[Value, float] = {out: 1.0}
    for v in reversed(toposort(out)):
        w = weight.get(v, 0.0)
        if not v.parents or w == 0.0 or not math.isfinite(w):
            continue
        try:
            ds = local_derivatives(v)
        except _EVAL_ERRORS:
            continue
        for p, d in zip(v.parents, ds, strict=False):
            d = abs(_to_float(d))
            if math.isfinite(d) and d:
                weight[p] = weight.get(p, 0.0) + w * d
    return weight


def _rounding_bound(out: Any) -> float:
    """First-order bound of the rounding error in ``out``'s value.

    Every operation may err by about one ulp of its result; that error reaches
    the output multiplied by the derivative along each path, so the bound is
    ``eps * sum(|d out/d v| * |v|)`` with the derivatives propagated in
    absolute value (no cancellation between paths).
    """
    if not isinstance(out, Value):
        return EPS * abs(_to_float(out))
    weight = _absolute_paths(out)
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


def _estimate(ev: _Evaluator, xs: Sequence[float], i: int, f0: float, noise_f: float) -> _Estimate:
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


@dataclass
class _Row:
    index: int
    path: str
    analytic: float
    numeric: float
    difference: float
    tolerance: float
    note: str = ""


def _analytic(
    f: Callable[..., Any], xs: Sequence[float], path: str, seed: float = 1.0
) -> tuple[Any, list[Any]]:
    """Build ``f`` on fresh leaves and differentiate it along one engine path."""
    leaves = _leaves(xs)
    out = f(*leaves)
    if not isinstance(out, Value) or not out.requires_grad:  # a constant: nothing depends on the inputs
        return out, [0.0 for _ in leaves]
    if path == "backward":
        out.backward(seed)
        return out, [v.grad for v in leaves]
    table = gradients(out, seed)
    return out, [table.get(v, 0.0) for v in leaves]


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _extra_checks(f: Callable[..., Any], xs: Sequence[float], plain: dict[str, list[float]]) -> list[str]:
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
        _, again = _analytic(f, xs, path)
        for i, (a, b) in enumerate(zip(grads, again, strict=True)):
            if not _same(a, b):
                problems.append(f"input {i}: {path} on a fresh graph gave {b!r}, the first time {a!r}")
    seed = -2.0  # a power of two: scaling by it is exact
    for path, grads in plain.items():
        _, seeded = _analytic(f, xs, path, seed)
        for i, (a, b) in enumerate(zip(grads, seeded, strict=True)):
            expected = seed * a
            if math.isfinite(expected) and abs(expected) > 1e-290 and not _same(b, expected):
                problems.append(f"input {i}: {path} seeded with {seed} gave {b!r}, expected {seed} * {a!r}")
    if isinstance(out, Value) and out.requires_grad:
        out.backward()
        first = [_to_float(v.grad) for v in leaves]
        out.backward()
        # the second backward adds each contribution again, one by one, so
        # the sum may differ from 2 * first by rounding of the terms' size
        scale = _absolute_paths(out)
        for i, v in enumerate(leaves):
            tol = 8.0 * EPS * scale.get(v, 0.0)
            if math.isfinite(first[i]) and not abs(_to_float(v.grad) - 2.0 * first[i]) <= tol:
                problems.append(
                    f"input {i}: a second backward on the same graph gave {v.grad!r}, "
                    f"expected the first ({first[i]!r}) accumulated twice"
                )
    return problems


def check_grad(
    f: Callable[..., Any],
    inputs: Sequence[float],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    extra_checks: bool = True,
    reject_unreliable: bool = True,
) -> tuple[float, ...]:
    """Check the engine's derivatives of ``f`` at ``inputs``; return them.

    ``f`` takes one Value per input and returns a Value (a plain number means
    a constant function).  The gradient is computed along both engine paths,
    ``Value.backward`` and :func:`~microgrannd.gradients`, and each is
    compared with :func:`numerical_grad`: a partial derivative passes when
    ``|analytic - numeric| <= atol + rtol * |numeric| + noise``, ``noise``
    being a bound on the effect of rounding (see the module docstring).

    With ``extra_checks`` it also checks that inputs the output does not
    depend on get exactly 0.0, that differentiating a fresh graph again gives
    identical numbers, that a seeded ``backward(s)`` gives exactly ``s`` times
    the gradient, and that a second ``backward`` on the same graph doubles the
    inputs' gradients.

    Raises :class:`GradcheckError` on a mismatch (the message names the
    function, the inputs, and per mismatched input the analytic and numeric
    values, their difference and the tolerance) and
    :class:`NumericallyUnreliable` where finite differences cannot decide.
    Inside a hypothesis test an unreliable point is rejected instead (with
    ``reject_unreliable``), so it neither fails nor counts as a passing
    example.
    """
    xs = [float(x) for x in inputs]
    out, from_backward = _analytic(f, xs, "backward")
    _, from_dict = _analytic(f, xs, "gradients")
    analytic = {
        "backward": [_to_float(g) for g in from_backward],
        "gradients": [_to_float(g) for g in from_dict],
    }
    ev = _Evaluator(f)
    f0 = _to_float(out)
    noise_f = _rounding_bound(out)
    failures: list[_Row] = []
    doubts: list[tuple[str, str]] = []  # (reason, details)
    for i in range(len(xs)):
        est = _estimate(ev, xs, i, f0, noise_f)
        for path, grads in analytic.items():
            a = grads[i]
            tol = atol + rtol * abs(est.value) + est.noise
            diff = abs(a - est.value)
            if diff <= tol:
                continue
            row = _Row(i, path, a, est.value, diff, tol)
            if est.problem:
                doubts.append(("undefined", f"input {i}: {est.problem}"))
            elif est.kink:
                doubts.append((
                    "kink",
                    f"input {i}: a kink (or a pole inside the stencil) near x{i} = {xs[i]!r} "
                    f"(one-sided slopes differ by {est.kink:.3g} and do not converge as the step halves)",
                ))
            elif not math.isfinite(a) or diff > tol + _CLEAR_MISS * est.uncertainty:
                if est.uncertainty > tol:
                    row.note = f"(central differences at h and h/2 differ by {est.uncertainty:.3g})"
                failures.append(row)
            else:
                doubts.append((
                    "unstable",
                    f"input {i}: central differences at h and h/2 differ by {est.uncertainty:.3g}, "
                    f"more than the tolerance {tol:.3g} (curvature or a pole near x{i} = {xs[i]!r})",
                ))
    for i, (a, b) in enumerate(zip(analytic["backward"], analytic["gradients"], strict=True)):
        tol = atol + rtol * max(abs(a), abs(b))
        if not (abs(a - b) <= tol or _same(a, b)):
            failures.append(_Row(i, "backward vs gradients", a, b, abs(a - b), tol))
    name = _name(f)
    if failures:
        lines = [f"check_grad({name}) at inputs {tuple(xs)!r}: derivatives disagree"]
        for r in failures:
            ref = "gradients()" if r.path == "backward vs gradients" else "numeric"
            lines.append(
                f"  input {r.index} [{r.path}]: analytic {r.analytic!r}, {ref} {r.numeric!r}, "
                f"difference {r.difference:.3g}, tolerance {r.tolerance:.3g} {r.note}".rstrip()
            )
        lines += [f"  (also unreliable: {d})" for _, d in dict.fromkeys(doubts)]
        raise GradcheckError("\n".join(lines))
    if doubts:
        lines = [f"check_grad({name}) at inputs {tuple(xs)!r}: finite differences are unreliable here"]
        lines += [f"  {d}" for _, d in dict.fromkeys(doubts)]
        raise _unreliable("\n".join(lines), doubts[0][0], reject_unreliable)
    if extra_checks:
        problems = _extra_checks(f, xs, analytic)
        if problems:
            lines = [f"check_grad({name}) at inputs {tuple(xs)!r}: the engine's bookkeeping is wrong"]
            lines += [f"  {p}" for p in problems]
            raise GradcheckError("\n".join(lines))
    return tuple(analytic["backward"])


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
    """Check second derivatives of ``f`` at ``inputs``; return the Hessian.

    Row ``i`` of the Hessian is computed twice, with ``grad(grad(f, i), j)``
    and with ``backward(create_graph=True)`` followed by a backward of the
    resulting gradient, and each is compared with finite differences of the
    first derivative ``grad(f, i)``.  Mixed partials must be symmetric:
    ``H[i][j]`` and ``H[j][i]`` agree within ``atol + rtol * max(|.|)``.
    Failures raise :class:`GradcheckError`, unreliable points
    :class:`NumericallyUnreliable` (rejected inside hypothesis), as in
    :func:`check_grad`.
    """
    xs = [float(x) for x in inputs]
    n = len(xs)
    hessian: list[list[float]] = []
    everything = tuple(range(n))
    for i in range(n):
        first = grad(f, argnums=i)
        first.__qualname__ = f"grad({_name(f)}, argnums={i})"
        row = check_grad(
            first, xs, rtol=rtol, atol=atol, extra_checks=False, reject_unreliable=reject_unreliable
        )
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
            raise GradcheckError(
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
