"""Recording modes: the current composite scope, whether graphs are recorded, tracing.

The mode lives in a ContextVar, so each thread (and each asyncio task) has its
own.  :func:`_changed` is the one function that changes it; :func:`scope`,
:func:`no_grad`, :func:`enable_grad` and :func:`tracing` are each one call of
it, so entering one never drops what another set.
"""

from __future__ import annotations

import gc
import itertools
import linecache
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, overload

__all__ = [
    "Scope",
    "TraceError",
    "Mode",
    "current_mode",
    "composite",
    "enable_grad",
    "gc_paused",
    "is_grad_enabled",
    "no_grad",
    "scope",
    "tracing",
]

F = TypeVar("F", bound=Callable[..., Any])


class TraceError(RuntimeError):
    """A traced function read a Value's number in a way the graph cannot record."""


@dataclass(eq=False, slots=True)
class Scope:
    """One call of a composite function.

    ``name`` is the composite's name, ``id`` is unique per call, and
    ``parent`` is the enclosing composite call (``None`` at top level).
    Scopes compare and hash by identity: each call is its own scope.
    A scope is a read-only record: microgrannd never changes one once made
    (it is not frozen only so that making one stays cheap, see
    :func:`enter_scope`), and neither should you.
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


@dataclass(slots=True, unsafe_hash=True)
class Mode:
    """What recording does now.

    ``scope``: the composite call new nodes belong to; ``grad_enabled``:
    whether operations record a graph (False inside :func:`no_grad`);
    ``node_type``: the class of recorded nodes while tracing (None: Value);
    ``checked``: whether domain errors are raised (False while a derivative
    rule builds a graph: there a pole gives ``inf``, as on floats).
    A read-only record, as :class:`Scope` is: a new mode is made for each
    change, never an old one changed.
    """

    scope: Scope | None = None
    grad_enabled: bool = True
    node_type: type | None = None
    checked: bool = True


#: The mode outside every block: record Values, no scope, domains checked.  The
#: engine tests for it by identity (``current_mode() is DEFAULT``) to take its
#: fast path, so :func:`_changed` hands back this very object whenever the
#: fields come back to these values.
DEFAULT = Mode()
MODE: ContextVar[Mode] = ContextVar("microgrannd_mode", default=DEFAULT)  # never changed: safe to share
#: The current :class:`Mode`.  (Call this rather than ``MODE.get()`` in other
#: modules: CPython 3.11 builds a bound method for each ``imported_name.get()``,
#: which costs about a tenth of recording a node.)
current_mode = MODE.get
_scope_ids = itertools.count(1)
_KEEP: Any = object()


@contextmanager
def _changed(scope: Any = _KEEP, grad_enabled: Any = _KEEP, node_type: Any = _KEEP,
             checked: Any = _KEEP) -> Iterator[Mode]:
    """Inside the block, the mode with the given fields changed; the rest is kept."""
    m = MODE.get()
    new = Mode(
        m.scope if scope is _KEEP else scope,
        m.grad_enabled if grad_enabled is _KEEP else grad_enabled,
        m.node_type if node_type is _KEEP else node_type,
        m.checked if checked is _KEEP else checked,
    )
    if new == DEFAULT:
        new = DEFAULT
    token = MODE.set(new)
    try:
        yield new
    finally:
        MODE.reset(token)


_new = object.__new__


def new_scope(name: str, parent: Scope | None) -> Scope:
    """A new :class:`Scope` (built field by field: cheaper than its ``__init__``)."""
    s = _new(Scope)
    s.name = name
    s.id = next(_scope_ids)
    s.parent = parent
    return s


def mode_in(m: Mode, s: Scope) -> Mode:
    """Mode ``m`` with scope ``s`` (built field by field: cheaper than its ``__init__``)."""
    new = _new(Mode)
    new.scope = s
    new.grad_enabled = m.grad_enabled
    new.node_type = m.node_type
    new.checked = m.checked
    return new


def enter_scope(name: str) -> Token[Mode]:
    """Enter a new scope ``name`` without a ``with`` block; leave it with ``MODE.reset(token)``.

    The cheap form of :func:`scope`, for code that runs thousands of times
    a training step (the :mod:`microgrannd.nn` modules): no generator, one
    new :class:`Scope` and one new :class:`Mode`.  Pair it with the reset
    in a ``try``/``finally``.
    """
    m = MODE.get()
    return MODE.set(mode_in(m, new_scope(name, m.scope)))


@contextmanager
def scope(name: str) -> Iterator[Scope]:
    """Record every node created inside the ``with`` block under ``name``.

    Scopes nest; the drawing shows each one as a labelled cluster.
    """
    s = Scope(name, next(_scope_ids), MODE.get().scope)
    with _changed(scope=s):
        yield s


def no_grad() -> Any:
    """Inside the block, operations record no graph: results are constants."""
    return _changed(grad_enabled=False)


def enable_grad() -> Any:
    """Inside the block, operations record graphs again (even within :func:`no_grad`)."""
    return _changed(grad_enabled=True)


def tracing(node_type: type) -> Any:
    """Inside the block, every recorded node is created as ``node_type``.

    ``node_type`` must be a subclass of :class:`~microgrannd.Value` declaring
    ``__slots__ = ()``.  The compiler (``microgrannd.compile``) uses it to
    record a graph whose numbers Python may not branch on.
    """
    return _changed(node_type=node_type)


def is_grad_enabled() -> bool:
    """True unless called inside :func:`no_grad`."""
    return MODE.get().grad_enabled


def is_tracing() -> bool:
    """True inside ``microgrannd.compile``'s trace of a function."""
    return MODE.get().node_type is not None


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

    microgrannd's graphs hold no reference cycles (except a gradient stored by
    ``backward(create_graph=True)``): reference counting frees them, so the
    collector finds nothing in them, yet while a large graph is being built it
    rescans it again and again (a training step of micrograd's demo network
    runs about 1.6x faster without it, and building a chain of a million
    nodes stays linear in time).  The collector's state is global to the
    interpreter: other threads are affected too, and cycles that other code
    makes inside the block are reclaimed only after it.  The previous state is
    restored on exit.  microgrannd never pauses the collector on its own.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_INTERNAL = ("microgrannd.engine", "microgrannd.walk", "microgrannd.modes", "microgrannd.ops")


def trace_error(what: str) -> TraceError:
    """The error for reading a traced number, naming the first line outside the engine."""
    frame = sys._getframe(1)
    while frame.f_back is not None and (frame.f_globals.get("__name__", "") in _INTERNAL
                                        or frame.f_globals.get("__name__", "").startswith("microgrannd.compile")):
        frame = frame.f_back
    code = frame.f_code
    text = linecache.getline(code.co_filename, frame.f_lineno).strip()
    where = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}" + (f": {text}" if text else "")
    return TraceError(
        f"{what} of a traced Value at {where}\n"
        "A compiled function replays the graph recorded while tracing, so a Python decision "
        "taken on the example's numbers would silently be reused for every other input. "
        "Express it with a primitive (relu, abs, stop_gradient, ...), or move it out of the compiled function.")
