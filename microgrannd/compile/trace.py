"""Tracing: run a function once on Values whose numbers Python may not branch on.

The traced function receives fresh leaves of the class :class:`Traced` (never
the caller's own Values), and every node it records is made a ``Traced`` too
(:func:`microgrannd.modes.tracing`).  Reading such a number outside the engine
(``.data``), or any Value's that takes gradients by ``bool``, a comparison,
``float``, ``int``, ``round``, ``repr``, ``str`` or ``detach``, raises
:class:`TraceError` naming the line: the compiled code would otherwise reuse
the decision taken on the example's numbers.  Nothing outside the traced call
changes: Values the function reaches by closure keep their class, so other
threads using them see nothing.  Values held directly in the function's
closure are traced through stand-ins in a copy of the function, so their
``.data`` is guarded too; the ``.data`` of a Value reached another way (an
attribute, a global, a list) is the one read no hook can see without changing
the object that other code holds.
"""

from __future__ import annotations

import numbers
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

from microgrannd import engine, walk
from microgrannd.engine import Value
from microgrannd.modes import TraceError, trace_error, tracing

__all__ = ["STATIC", "Spec", "Traced", "TraceError", "collect", "key", "leaves", "rebuild", "spec", "trace", "DATA"]

DATA = Value.__dict__["data"]  # the slot descriptor: reads that bypass the guard
_ENGINE = (vars(engine), vars(walk))  # whose reads of a traced number are the engine computing


def _get_data(self: Value) -> float:
    """The number, for the engine; a TraceError for anyone else."""
    if sys._getframe(1).f_globals in _ENGINE:
        return DATA.__get__(self)
    raise trace_error("reading .data")


def _set_data(self: Value, x: float) -> None:
    DATA.__set__(self, x)


class Traced(Value):
    """A node recorded while tracing: its number is not for Python to branch on."""

    __slots__ = ()

    data = property(_get_data, _set_data)

    def __index__(self) -> int:
        raise trace_error("use as a Python index (list[v], range(v); to pick an entry by a traced "
                          "index, record the choice with mg.gather(values, index))")


# --------------------------------------------------------------------------
# Arguments: nested lists/tuples of numbers and Values

# A spec is None for a scalar, STATIC for a static argument, or
# (list|tuple, [child specs], all_scalar).
Spec = Any


class _Static:
    def __repr__(self) -> str:
        return "STATIC"


#: The spec of a static argument: a bool, str or None passed directly as an
#: argument, or an argument named in ``static_argnums``; given to the function
#: as it is and part of the cache key.
STATIC = _Static()


def is_static(obj: Any, declared: bool = False) -> bool:
    """Whether a top-level argument is static: declared so, or a bool, a str or None (never a number)."""
    return declared or obj is None or isinstance(obj, bool | str)


def _refused(obj: Any, where: str) -> TypeError:
    return TypeError(
        f"compile: argument {where} is a {type(obj).__name__}; arguments must be numbers, Values, "
        "or lists/tuples of them, or (directly as an argument, not inside a list) a bool, str "
        "or None, which is static; declare other static arguments with static_argnums=, "
        "or capture them by closure")


def spec(obj: Any, where: str, top: bool = False, declared: bool = False) -> Spec:
    """The shape of argument ``obj``: None for a scalar, else (type, children, all scalar).

    With ``top`` (a whole argument), a bool, str or None, or an argument
    ``declared`` static, is :data:`STATIC`.
    """
    if top and is_static(obj, declared):
        return STATIC
    if isinstance(obj, Value) or (isinstance(obj, numbers.Real) and not isinstance(obj, bool)):
        return None
    if isinstance(obj, list | tuple):
        children = [spec(x, f"{where}[{i}]") for i, x in enumerate(obj)]
        return (type(obj), children, all(c is None for c in children))
    raise _refused(obj, where)


def _is_scalar(x: Any) -> bool:
    return type(x) is float or isinstance(x, Value) or (isinstance(x, numbers.Real) and not isinstance(x, bool))


def _key(obj: Any, where: str) -> Any:
    if _is_scalar(obj):
        return None
    if isinstance(obj, list | tuple):
        children = [None if _is_scalar(x) else _key(x, f"{where}[{i}]") for i, x in enumerate(obj)]
        if not any(children):
            return (type(obj), len(obj))
        return (type(obj), tuple(children))
    raise _refused(obj, where)


def key(args: tuple[Any, ...], static_argnums: tuple[int, ...] = ()) -> tuple[Any, ...]:
    """The structure of a call's arguments, hashable: what a compiled trace depends on.

    The number of arguments; for each, whether it is a scalar input (a
    number or a Value: which one does not change the graph), the nesting of
    lists and tuples with their lengths, or a static argument's type and value.
    """
    for i in static_argnums:
        if i < len(args):
            try:
                hash(args[i])
            except TypeError:
                raise TypeError(f"compile: static argument #{i} must be hashable (it is part of the "
                                f"cache key), not a {type(args[i]).__name__}") from None
    return tuple((type(a), a) if is_static(a, i in static_argnums) else _key(a, f"#{i}")
                 for i, a in enumerate(args))


def leaves(obj: Any, s: Spec, out: list[Any]) -> None:
    """Append the scalars of ``obj`` (shaped like ``s``) to ``out``."""
    if s is None:
        out.append(obj)
    elif s is not STATIC:
        for x, c in zip(obj, s[1], strict=True):
            leaves(x, c, out)


def _scalar(x: Any) -> float:
    if isinstance(x, Value):
        return DATA.__get__(x)
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x)
    raise TypeError(f"compiled function: expected a number or a Value, got {type(x).__name__}")


def collect(obj: Any, s: Spec, out: list[float], where: str) -> None:
    """Append the numbers of ``obj`` (shaped like ``s``) to ``out``."""
    if s is None:
        out.append(obj if type(obj) is float else _scalar(obj))
        return
    if s is STATIC:
        return
    if not isinstance(obj, list | tuple) or len(obj) != len(s[1]):
        n = len(s[1])
        got = f"length {len(obj)}" if isinstance(obj, list | tuple) else type(obj).__name__
        raise TypeError(f"compiled function: argument {where} must be a sequence of length {n} "
                        f"(as when compiled), got {got}")
    if s[2]:
        out.extend([x if type(x) is float else _scalar(x) for x in obj])
    else:
        for i, (x, c) in enumerate(zip(obj, s[1], strict=True)):
            collect(x, c, out, f"{where}[{i}]")


def rebuild(s: Spec, flat: list[float], pos: int) -> tuple[Any, int]:
    """Shape ``flat[pos:]`` like ``s``; return it and the next position (None for a static argument)."""
    if s is None:
        return flat[pos], pos + 1
    if s is STATIC:
        return None, pos
    kind, children, all_scalar = s
    if all_scalar:
        part = list(flat[pos:pos + len(children)])
        return (part if kind is list else tuple(part)), pos + len(children)
    items = []
    for c in children:
        item, pos = rebuild(c, flat, pos)
        items.append(item)
    return (items if kind is list else tuple(items)), pos


def _substitute(obj: Any, s: Spec, it: Iterator[Value]) -> Any:
    if s is None:
        return next(it)
    if s is STATIC:
        return obj
    items = [_substitute(x, c, it) for x, c in zip(obj, s[1], strict=True)]
    return items if s[0] is list else tuple(items)


# --------------------------------------------------------------------------
# Tracing


def _with_stand_ins(f: Callable[..., Any], stand_ins: dict[Value, Value]) -> Callable[[], Any]:
    """A copy of function ``f`` whose closure holds traced stand-ins for its Values.

    Only the copy's cells change: ``f`` and its Values stay as they are for
    everybody else.  ``stand_ins`` maps each stand-in to the Value it stands for.
    """
    closure = getattr(f, "__closure__", None)
    if not isinstance(f, types.FunctionType) or not closure:
        return f
    cells = []
    for cell in closure:
        try:
            v = cell.cell_contents
        except ValueError:  # an empty cell
            cells.append(cell)
            continue
        if isinstance(v, Value) and not v.parents and v.requires_grad and type(v) is Value:
            t = Traced(DATA.__get__(v), v.label)
            stand_ins[t] = v
            cell = types.CellType(t)
        cells.append(cell)
    g = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, tuple(cells))
    g.__kwdefaults__ = f.__kwdefaults__
    return g


def trace(f: Callable[..., Any], args: tuple[Any, ...], specs: list[Spec]
          ) -> tuple[Value, list[Value], list[Value], list[Value]]:
    """Run ``f`` on traced leaves; return (root, input leaves, captured leaves, captured Values).

    Captured Values are the leaves ``f`` reached by closure that take
    gradients: the compiled function reads their ``data`` at every call and
    its ``backward`` adds to their ``grad``.  Those held directly in ``f``'s
    closure are traced through stand-ins (the captured leaves of the graph).
    """
    scalars: list[Any] = []
    for a, s in zip(args, specs, strict=True):
        leaves(a, s, scalars)
    seen: set[int] = set()
    for x in scalars:
        if isinstance(x, Value):
            if id(x) in seen:
                raise ValueError("compile: the same Value appears twice among the arguments")
            if x.parents:
                raise ValueError("compile: Value arguments must be leaves (inputs or parameters)")
            seen.add(id(x))
    inputs: list[Value] = [Traced(_scalar(x)) for x in scalars]
    it = iter(inputs)
    traced_args = [_substitute(a, s, it) for a, s in zip(args, specs, strict=True)]
    stand_ins: dict[Value, Value] = {}
    traced_f = _with_stand_ins(f, stand_ins)
    with tracing(Traced):
        out = traced_f(*traced_args)
    if not isinstance(out, Value):
        if isinstance(out, numbers.Real) and not isinstance(out, bool):
            out = Value(float(out), requires_grad=False)
        else:
            raise TypeError(f"compile: {getattr(f, '__name__', 'f')} must return a scalar "
                            f"(a Value or a number), not {type(out).__name__}")
    input_set = set(inputs)
    captured: list[Value] = []
    for v in walk.toposort(out):
        if type(v) is Traced and not v.parents and v not in input_set and v not in stand_ins:
            raise TraceError(
                "a node recorded under no_grad() inside the traced function feeds the result: "
                "its number would be baked into the compiled code")
        if not v.parents and v.requires_grad and v not in input_set:
            captured.append(v)
        if type(v) is Traced:
            v.__class__ = Value  # type: ignore[assignment]  # the finished graph is an ordinary one (only this trace holds it)
    return out, inputs, captured, [stand_ins.get(v, v) for v in captured]
