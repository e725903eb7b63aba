"""``check_primitive``: property-test one primitive's forward function and derivative rule.

One call checks a primitive of the table, the package's or your own:

1. **forward**: the forward function never raises, even at infinities, NaN
   and huge inputs, and returns a float; ``mg.apply`` on numbers, the
   primitive called on floats and the node recorded on Values all hold the
   number the forward function gives;
2. **points across the whole domain**: inputs of both signs, tiny, moderate,
   large (``|x| > 5``) and huge magnitudes, kept where ``valid`` accepts them
   and the forward function is finite.  At each, the rule is called on
   floats and on Values, then :func:`~microgrannd.testing.check_grad`
   (``backward``, ``gradients()`` and ``backward(create_graph=True)``
   against finite differences, the Taylor remainder and forward mode) and
   the second-order part of :func:`~microgrannd.testing.check_grad2`
   (``grad(f)`` on floats and on Values, ``grad(grad(f))``,
   ``backward(create_graph=True)`` twice, forward over reverse) run on it.
   Where finite differences cannot judge (a kink, a pole, the edge of the
   domain), the point is skipped and counted;
3. **random expressions**: hypothesis draws trees and DAGs (nodes used
   several times) in which about half of the nodes apply the primitive, and
   checks first and second derivatives of each; a failure is shrunk to the
   smallest expression that fails.

The points are chosen by the domain and the forward function alone, never
by the rule under test.  Everything runs from a fixed seed, so a call is
reproducible.  A failure raises
:class:`~microgrannd.testing.GradcheckError` naming the primitive, the
point and the path; a pass returns a :class:`PrimitiveCheck` summary.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from microgrannd.engine import Value
from microgrannd.functions import apply
from microgrannd.ops import PRIMITIVES, Primitive, primitive
from microgrannd.testing.gradcheck import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    GradcheckError,
    GradcheckReport,
    NumericallyUnreliable,
    _second_order,
    _to_float,
    check_grad,
    check_grad2,
)
from microgrannd.walk import gradients

__all__ = ["PrimitiveCheck", "check_primitive"]

# Inputs the forward function must survive (it is total: it never raises).
_SPECIAL = (0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 5e-324, 1e300, -1e300, math.inf, -math.inf, math.nan)
# Exponents and other constant inputs: integers and one-decimal numbers.
_CONSTANTS = (2.0, 3.0, -1.0, 0.5, -2.0, 1.5, 4.0, -0.5, 0.0, 1.0, 2.5, -3.0, 0.3, -1.5)
_SIMPLE = (1.0, 0.5, 2.0, 1.5, 3.0, 0.25, 2.5)


def _magnitude(kind: str, rng: random.Random) -> float:
    if kind == "simple":
        return rng.choice(_SIMPLE)
    if kind == "tiny":
        return 10.0 ** rng.uniform(-8.0, -2.0)
    if kind == "small":
        return 10.0 ** rng.uniform(-2.0, 0.0)
    if kind == "moderate":
        return rng.uniform(1.0, 5.0)
    if kind == "large":
        return rng.uniform(5.0, 50.0)
    return 10.0 ** rng.uniform(math.log10(50.0), 4.0)  # huge


# Where a sampled input comes from: a magnitude class and a sign.
_KINDS = tuple(
    (kind, sign)
    for kind in ("simple", "moderate", "large", "small", "huge", "tiny")
    for sign in (1.0, -1.0)
)


@dataclass(frozen=True)
class PrimitiveCheck:
    """What :func:`check_primitive` checked, when everything passed.

    ``points`` is the number of inputs where the first and second
    derivatives were checked (``second_order`` of them at second order too:
    the others were unreliable there); ``regions`` counts them by region of
    each input (``"x < 0"``, ``"|x| > 5"``, ...); ``skipped`` counts the
    points finite differences could not judge, by reason; ``expressions`` is
    the number of random expressions checked, with ``note`` saying why there
    were none if so.
    """

    name: str
    seed: int
    differentiable: bool
    points: int
    second_order: int
    regions: dict[str, int]
    skipped: dict[str, int]
    expressions: int
    note: str = ""
    checks: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        lines = [f"check_primitive({self.name}): passed (seed {self.seed})"]
        lines += [f"  {c}" for c in self.checks]
        regions = ", ".join(f"{k}: {v}" for k, v in self.regions.items())
        lines.append(f"  {self.points} points ({regions})")
        if self.skipped:
            why = ", ".join(f"{k} {v}" for k, v in self.skipped.items())
            lines.append(f"  skipped where finite differences cannot judge: {why}")
        if self.differentiable:
            lines.append(f"  second order at {self.second_order} of the points")
            lines.append(f"  {self.expressions} random expressions with the primitive (trees and DAGs)"
                         + (f": {self.note}" if self.note else ""))
        return "\n".join(lines)


@contextmanager
def _registered(p: Primitive) -> Iterator[None]:
    """``p`` in the table for the duration (taken out again if it was not there)."""
    if p.name in PRIMITIVES:
        if PRIMITIVES[p.name] is not p:
            raise ValueError(f"check_primitive: another primitive named {p.name!r} is in microgrannd.PRIMITIVES")
        yield
        return
    primitive(p)
    try:
        yield
    finally:
        PRIMITIVES.pop(p.name, None)


def _call(p: Primitive, args: tuple[float, ...]) -> str:
    return f"{p.name}({', '.join(repr(a) for a in args)})"


def _fail(p: Primitive, where: str, what: str, details: str = "", path: str = "",
          report: GradcheckReport | None = None) -> GradcheckError:
    """The error check_primitive raises: the primitive, what is wrong, the input, the path, then details."""
    message = f"check_primitive({p.name}): {what} at {where}" + (f" [{path}]" if path else "")
    return GradcheckError(message + (f"\n{details}" if details else ""), report)


def _free(p: Primitive) -> list[int]:
    return [k for k in range(p.arity) if k not in p.constant_args]


# --------------------------------------------------------------------------
# 1. The forward function


def _check_forward_total(p: Primitive) -> None:
    """The forward function and ``valid`` never raise, and the forward gives a float."""
    for k in _free(p):
        for x in _SPECIAL:
            args = tuple(x if j == k else (_CONSTANTS[0] if j in p.constant_args else 1.0) for j in range(p.arity))
            for what, fn in (("forward", p.forward), ("valid", p.valid)):
                if fn is None:
                    continue
                try:
                    y = fn(*args)
                except Exception as e:
                    raise _fail(
                        p, _call(p, args), f"its {what} function raised {type(e).__name__}",
                        f"  {type(e).__name__}: {e}\n  a forward function must never raise (give inf or nan instead: "
                        "the domain is valid's job), and valid must answer for every input") from e
                if what == "forward" and not isinstance(y, float):
                    raise _fail(p, _call(p, args), f"its forward function returned {type(y).__name__} {y!r}, "
                                "not a float")


def _check_forward_at(p: Primitive, args: tuple[float, ...]) -> None:
    """apply() on numbers, the call on floats and the recorded node agree with the forward function."""
    where = _call(p, args)
    y = p.forward(*args)
    try:
        by_apply = apply(p, *args)
        by_call = p(*args)
        inputs = [a if k in p.constant_args else Value(a) for k, a in enumerate(args)]
        node = apply(p, *inputs)
    except Exception as e:
        raise _fail(p, where, f"computing it raised {type(e).__name__} inside its domain",
                    f"  {type(e).__name__}: {e}", path="forward") from e
    for label, z in (("mg.apply on numbers", by_apply), ("the primitive called on floats", by_call),
                     ("the node recorded on Values", node.data)):
        if not (z == y or (math.isnan(z) and math.isnan(y))):
            raise _fail(p, where, f"{label} gives {z!r} but its forward function gives {y!r}", path="forward")
    if node.op != p.name or len(node.parents) != p.arity:
        raise _fail(p, where, f"the recorded node has op {node.op!r} and {len(node.parents)} parents",
                    path="forward")


# --------------------------------------------------------------------------
# 2. Points across the domain


def _regions(p: Primitive, args: tuple[float, ...]) -> list[str]:
    names = []
    free = _free(p)
    for k in free:
        x = args[k]
        var = "x" if len(free) == 1 else f"x{k}"
        names.append(f"{var} < 0" if x < 0 else (f"{var} > 0" if x > 0 else f"{var} = 0"))
        if abs(x) > 5:
            names.append(f"|{var}| > 5")
    return names


def _region_order(name: str) -> tuple[str, int]:
    var = name.strip("|").split(" ")[0].rstrip("|")
    kinds = ("< 0", "= 0", "> 0", "> 5")
    return var, next(i for i, k in enumerate(kinds) if name.endswith(k))


def _draw(p: Primitive, kind: int, rng: random.Random) -> tuple[float, ...]:
    """Inputs whose first free one is of ``kind``; the other free ones of any kind, constants from a list."""
    free = _free(p)
    args = []
    for k in range(p.arity):
        if k in p.constant_args:
            args.append(rng.choice(_CONSTANTS))
        else:
            name, sign = _KINDS[kind if k == free[0] else rng.randrange(len(_KINDS))]
            args.append(sign * _magnitude(name, rng))
    return tuple(args)


def _points(p: Primitive, count: int, rng: random.Random) -> list[tuple[float, ...]]:
    """Up to ``count`` inputs inside the domain, spread over signs and magnitudes.

    A candidate is kept when ``valid`` accepts it and the forward function is
    finite there; the rule is never consulted.  The first free input cycles
    through every kind of number (simple ones first, then both signs of
    moderate, large, small, huge and tiny ones), the others are drawn at
    random; a kind that misses the domain eight times running is given up.
    """
    points: list[tuple[float, ...]] = []
    zero = tuple(rng.choice(_CONSTANTS) if k in p.constant_args else 0.0 for k in range(p.arity))
    if _inside(p, zero):
        points.append(zero)
    seen = set(points)
    misses = [0] * len(_KINDS)
    for j in range(50 * count):
        if len(points) >= count or min(misses) >= 8:
            break
        kind = j % len(_KINDS)
        if misses[kind] >= 8:
            continue
        args = _draw(p, kind, rng)
        if args in seen:
            continue
        if not _inside(p, args):
            misses[kind] += 1
            continue
        misses[kind] = 0
        seen.add(args)
        points.append(args)
    return points


def _inside(p: Primitive, args: tuple[float, ...]) -> bool:
    try:
        if p.valid is not None and not p.valid(*args):
            return False
        return math.isfinite(p.forward(*args))
    except Exception:
        return False


def _as_function(p: Primitive, args: tuple[float, ...]) -> Callable[..., Any]:
    """The primitive as a function of its free inputs, the constants fixed."""
    free = _free(p)

    def f(*xs: Any) -> Any:
        full: list[Any] = list(args)
        for k, x in zip(free, xs, strict=True):
            full[k] = x
        return apply(p, *full)

    f.__qualname__ = p.name
    return f


def _probe_rule(p: Primitive, args: tuple[float, ...]) -> None:
    """The rule, called on floats and on Values, returns one number per input and does not raise."""
    where = _call(p, args)
    out = p.forward(*args)
    try:
        on_floats = p.vjp(1.0, *args, out)
    except Exception as e:
        raise _fail(p, where, f"its rule raised {type(e).__name__} on floats", f"  {type(e).__name__}: {e}",
                    path="backward") from e
    if not isinstance(on_floats, tuple) or len(on_floats) != p.arity:
        raise _fail(p, where, f"its rule returned {on_floats!r} on floats: a tuple of one number per input "
                    f"({p.arity}) is needed", path="backward")
    for d in on_floats:
        if not isinstance(d, float | int) or isinstance(d, bool):
            raise _fail(p, where, f"its rule returned {on_floats!r} on floats: each entry must be a float",
                        path="backward")
    try:
        inputs = [a if k in p.constant_args else Value(a) for k, a in enumerate(args)]
        gradients(apply(p, *inputs), create_graph=True)
    except Exception as e:
        raise _fail(p, where, f"its rule raised {type(e).__name__} on Values",
                    f"  {type(e).__name__}: {e}\n"
                    "  a rule runs on floats (backward) and on Values (backward(create_graph=True), grad of grad): "
                    "write it with arithmetic and primitives (COS(a), not math.cos(a))", path="create_graph") from e


def _check_no_gradient(p: Primitive, args: tuple[float, ...]) -> None:
    """A primitive declared ``differentiable=False`` sends exactly 0.0 back on every path."""
    free = _free(p)
    for path in ("backward", "gradients", "create_graph"):
        inputs: list[Any] = [a if k in p.constant_args else Value(a) for k, a in enumerate(args)]
        out = apply(p, *inputs)
        if path == "gradients":
            table = gradients(out)
            got = [table.get(inputs[k], 0.0) for k in free]
        else:
            out.backward(create_graph=path == "create_graph")
            got = [inputs[k].grad for k in free]
        if any(_to_float(g) != 0.0 for g in got):
            raise _fail(p, _call(p, args), f"it is declared differentiable=False, but {path} sends back {got!r}")


def _order_label(error: GradcheckError) -> str:
    report = error.report
    if report is not None and report.failed:
        return ", ".join(report.failed)
    return ""


# --------------------------------------------------------------------------
# 3. Random expressions


def _expressions(p: Primitive, count: int, seed: int, rtol: float, atol: float) -> tuple[int, str]:
    """Check ``count`` random expressions built around ``p``; return (checked, note)."""
    try:
        import hypothesis
        from hypothesis import HealthCheck, Phase, Verbosity, find, settings
        from hypothesis import strategies as st
        from hypothesis.errors import NoSuchExample, Unsatisfiable, UnsatisfiedAssumption

        from microgrannd.testing.strategies import dags, expressions
    except ImportError:
        return 0, "skipped: they need hypothesis (pip install microgrannd[testing])"
    if hypothesis.currently_in_test_context():
        return 0, "skipped: hypothesis cannot run inside a hypothesis test (call check_primitive from a plain test)"
    if count <= 0:
        return 0, ""
    strategy = st.one_of(
        expressions(variables=2, max_depth=4, focus=p.name),
        dags(variables=2, max_nodes=6, focus=p.name),
    )
    checked = 0

    def check(expr: Any) -> None:
        check_grad(expr, expr.point, rtol=rtol, atol=atol)
        check_grad2(expr, expr.point, rtol=rtol, atol=atol)

    def fails(expr: Any) -> bool:
        nonlocal checked
        try:
            check(expr)
        except UnsatisfiedAssumption:  # an unreliable point, rejected by check_grad
            raise
        except NumericallyUnreliable:
            return False
        except Exception:
            return True
        checked += 1
        return False

    config = settings(
        max_examples=count, database=None, deadline=None, derandomize=False,
        phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet, print_blob=False,
    )
    try:
        smallest = find(strategy, fails, settings=config, random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):
        return checked, ""
    try:
        check(smallest)
    except GradcheckError as e:
        raise GradcheckError(
            f"check_primitive({p.name}): a random expression fails; the smallest one found:\n"
            + "\n".join(f"    {line}" for line in smallest.source.splitlines())
            + f"\n  at {smallest.point!r}\n{e}", e.report) from e
    except NumericallyUnreliable:  # pragma: no cover - the search found it failing
        return checked, ""
    except Exception as e:
        raise GradcheckError(
            f"check_primitive({p.name}): a random expression raises {type(e).__name__} ({e}); the smallest one:\n"
            + "\n".join(f"    {line}" for line in smallest.source.splitlines())
            + f"\n  at {smallest.point!r}") from e
    return checked, ""  # pragma: no cover - it failed during the search


# --------------------------------------------------------------------------
# The entry point


def check_primitive(
    prim: Primitive | str,
    *,
    examples: int = 100,
    expressions: int | None = None,
    seed: int = 0,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> PrimitiveCheck:
    """Property-test one primitive: its forward function and its rule, on floats and on Values.

    ``prim`` is a :class:`~microgrannd.Primitive` or the name of one in
    :data:`~microgrannd.PRIMITIVES`; a Primitive not in the table is added
    for the check and taken out again.  Only primitives of a fixed arity
    are checked: ``gather`` (arity -1) raises ``ValueError`` (its checks are
    in the package's tests/test_gather.py).  It checks the forward function
    (total, a float, the same through ``mg.apply``, a call on floats and a
    recorded node); then at ``examples`` points spread over the whole
    domain (both signs, tiny to huge magnitudes; chosen with ``valid`` and
    the forward function, never with the rule) the rule called on floats and
    on Values, first derivatives by :func:`~microgrannd.testing.check_grad`
    (``backward``, ``gradients()`` and ``backward(create_graph=True)``
    against finite differences, the Taylor remainder and forward mode) and
    second derivatives (``grad(grad(f))``, ``backward(create_graph=True)``
    twice, forward over reverse) against finite differences of the first;
    then ``expressions`` random expressions (default ``examples // 2``;
    trees, and DAGs whose nodes are used several times) in which the
    primitive appears, first and second order, with hypothesis (if it is
    installed).  A primitive declared ``differentiable=False`` must send
    exactly 0.0 back on every path instead.

    Everything is drawn from ``seed``: the same call checks the same points
    and expressions.  Raises :class:`~microgrannd.testing.GradcheckError`
    (an ``AssertionError``) at the first failure, naming the primitive, the
    input and the path, with the checker's message (for an expression, the
    smallest failing one as code and each node's rule checked on its own);
    returns a :class:`PrimitiveCheck` summary otherwise.  Raises
    :class:`~microgrannd.testing.NumericallyUnreliable` if finite
    differences could judge none of the points.
    """
    if isinstance(prim, str):
        if prim not in PRIMITIVES:
            raise KeyError(f"check_primitive: no primitive named {prim!r} in microgrannd.PRIMITIVES")
        p = PRIMITIVES[prim]
    elif isinstance(prim, Primitive):
        p = prim
    else:
        raise TypeError(f"check_primitive needs a Primitive or its name, not {type(prim).__name__}")
    if p.arity < 0:
        raise ValueError(f"check_primitive: {p.name} takes any number of inputs (arity -1); it checks "
                         "primitives of a fixed arity only")
    if not _free(p):
        raise ValueError(f"check_primitive: {p.name} has no input that is not a constant: nothing to check")
    with _registered(p):
        return _check(p, examples, examples // 2 if expressions is None else expressions, seed, rtol, atol)


def _check(p: Primitive, examples: int, n_expressions: int, seed: int, rtol: float,
           atol: float) -> PrimitiveCheck:
    rng = random.Random(f"{p.name}:{seed}")
    _check_forward_total(p)
    points = _points(p, examples, rng)
    if not points:
        raise NumericallyUnreliable(
            f"check_primitive({p.name}): no input inside its domain was found ({p.domain})", "undefined")
    checked = 0
    second = 0
    regions: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for args in points:
        _check_forward_at(p, args)
        where = _call(p, args)
        if not p.differentiable:
            _check_no_gradient(p, args)
        else:
            _probe_rule(p, args)
            f = _as_function(p, args)
            xs = [args[k] for k in _free(p)]
            try:
                check_grad(f, xs, rtol=rtol, atol=atol, reject_unreliable=False)
            except NumericallyUnreliable as e:
                skipped[e.reason] = skipped.get(e.reason, 0) + 1
                continue
            except GradcheckError as e:
                raise _fail(p, where, "the first derivative is wrong", str(e), _order_label(e), e.report) from e
            except Exception as e:
                raise _fail(p, where, f"checking the first derivative raised {type(e).__name__}",
                            f"  {type(e).__name__}: {e}") from e
            try:
                _second_order(f, xs, rtol=rtol, atol=atol, reject_unreliable=False)
                second += 1
            except NumericallyUnreliable:
                pass
            except GradcheckError as e:
                label = _order_label(e) or "grad(grad(f)), backward(create_graph=True)"
                raise _fail(p, where, "the second derivative is wrong", str(e), label, e.report) from e
            except Exception as e:
                raise _fail(p, where, f"checking the second derivative raised {type(e).__name__}",
                            f"  {type(e).__name__}: {e}") from e
        checked += 1
        for r in _regions(p, args):
            regions[r] = regions.get(r, 0) + 1
    if checked == 0:
        raise NumericallyUnreliable(
            f"check_primitive({p.name}): finite differences could judge none of {len(points)} points "
            f"({', '.join(f'{k} {v}' for k, v in skipped.items())})", next(iter(skipped), "undefined"))
    n, note = 0, ""
    if p.differentiable:
        n, note = _expressions(p, n_expressions, seed, rtol, atol)
    checks = ["forward function: total, gives floats; mg.apply, the call on floats and a recorded node agree"]
    if p.differentiable:
        checks.append("rule: on floats and on Values; first and second derivatives by backward, gradients(), "
                      "backward(create_graph=True) and grad(grad)")
        checks.append("oracles: finite differences, the Taylor remainder, forward mode (mg.jvp) against backward")
    else:
        checks.append("declared differentiable=False: exactly 0.0 flows back on every path")
    order = sorted(regions, key=_region_order)
    return PrimitiveCheck(
        name=p.name, seed=seed, differentiable=p.differentiable, points=checked, second_order=second,
        regions={r: regions[r] for r in order}, skipped=dict(sorted(skipped.items())), expressions=n,
        note=note, checks=tuple(checks),
    )

