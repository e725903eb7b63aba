"""Trace once per structure, run at the speed of plain floats.

``microgrannd.compile(f, *example_args)`` runs ``f`` once on Values to record
its graph, then turns the graph into a function of plain floats that computes
``f``'s value and its gradients without creating a single Value::

    def loss(w, b, xs, ys):
        return sum(((w * x + b) - y) ** 2 for x, y in zip(xs, ys))

    c = microgrannd.compile(loss, 0.5, 0.0, [1.0, 2.0], [2.0, 4.0], argnums=(0, 1))
    value, (dw, db) = c(0.7, 0.1, [1.0, 2.0, 3.0][:2], [2.0, 4.0])
    print(c.source)          # the generated straight-line Python

Two back ends run the recorded graph (``method=``):

* ``"codegen"`` (the default up to :data:`CODEGEN_MAX_LINES` lines,
  :mod:`microgrannd.compile.codegen`) writes one line of Python per node for
  the forward pass and one per gradient contribution for the backward pass;
  the expressions are the primitive table's own rules evaluated on symbols.
* ``"tape"`` (:mod:`microgrannd.compile.tape`) keeps the graph as a flat list
  of instructions run by a tight loop; bounded memory, used for graphs above
  the code-generation limit.

Both give the numbers the engine gives, a zero gradient sending nothing back.

**One trace per structure.** A call whose arguments have another structure
(:func:`~microgrannd.compile.trace.key`: list lengths, nesting, and the
values of static int/bool/str/None arguments) traces ``f`` again; the
compiled versions are kept in a bounded LRU cache (:data:`CACHE_SIZE`,
:meth:`Compiled.cache_info`).  Without example arguments, the first call
traces.  A number that selects (a token id) stays data with
:func:`microgrannd.gather`.

**Arguments.** Each argument is a number, a Value, or a (nested) list or
tuple of them; every number or Value in them is an input.  Values that ``f``
reaches by closure (a model's parameters, say) and that require gradients are
*captured*: the compiled function reads their ``data`` at every call, and
:meth:`Compiled.backward` adds their gradients to their ``grad``, exactly as
``loss.backward()`` would.  Plain numbers and constant Values that ``f`` uses
are folded into the code.

**Honest tracing** (:mod:`microgrannd.compile.trace`).  While tracing,
reading a traced number in a way that could steer Python (``if v > 0``,
``bool(v)``, ``float(v)``, ``v.data``, comparisons, ``max(v, w)``, ``repr``,
``backward()``, a branch inside a nested ``grad``) raises :class:`TraceError`
naming the file and line: the compiled function would otherwise silently
reuse the branch taken with the example inputs.  Use a primitive (``relu``,
``abs``, ``stop_gradient``, ...) to express the branch, or do the
data-dependent work outside ``f``.  Tracing changes no object that other code
holds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from microgrannd.compile.codegen import TooBig, codegen, forward_template, vjp_templates
from microgrannd.compile.tape import tape
from microgrannd.compile.trace import DATA, STATIC, Spec, TraceError, collect, key, leaves, rebuild, spec, trace
from microgrannd.engine import Value
from microgrannd.walk import toposort

__all__ = ["CACHE_SIZE", "CODEGEN_MAX_LINES", "CacheInfo", "Compiled", "TraceError", "compile", "forward_template",
           "key", "vjp_templates"]

#: Above this many lines of generated code ``method="auto"`` uses the tape:
#: CPython's compiler needs about 3 KB per line while compiling (micrograd's
#: demo step, 66,000 nodes, is 170,000 lines: about 0.5 GB and 1.5 s).
CODEGEN_MAX_LINES = 300_000
#: Memory the tape back end needs per node, beyond the traced graph (measured
#: about 300 bytes); checked against the memory available before building.
TAPE_BYTES_PER_NODE = 400
#: How many argument structures a compiled function keeps compiled, by
#: default (least recently used first out).  Each keeps its traced graph and
#: its code: a 50,000-node trace holds tens of megabytes.
CACHE_SIZE = 16

# --------------------------------------------------------------------------
# The compiled function


class CacheInfo(NamedTuple):
    """A compiled function's cache counters (see :meth:`Compiled.cache_info`).

    ``hits + misses`` is the number of calls (the example's trace counts as a
    miss); every miss traced ``f`` again.  ``compile_seconds`` is the time
    spent tracing and compiling, over all misses.
    """

    hits: int
    misses: int
    maxsize: int
    currsize: int
    compile_seconds: float


class _Trace:
    """One argument structure's trace, compiled."""

    def __init__(self, f: Callable[..., Any], args: tuple[Any, ...], argnums: Any, method: str,
                 codegen_limit: int, static_argnums: tuple[int, ...] = ()) -> None:
        t0 = time.perf_counter()
        self.specs: list[Spec] = [spec(a, f"#{i}", top=True, declared=i in static_argnums)
                                  for i, a in enumerate(args)]
        n = len(args)
        if argnums is None:
            self.argnums: tuple[int, ...] = tuple(range(n))
        else:
            idx = (argnums,) if isinstance(argnums, int) else tuple(argnums)
            for i in idx:
                if not -n <= i < n:
                    raise IndexError(f"argnums {i} out of range for {n} arguments")
            self.argnums = tuple(i % n for i in idx)
        root, inputs, captured_leaves, captured = trace(f, args, self.specs)
        self.trace_seconds = time.perf_counter() - t0
        self.graph = root
        self.captured = captured
        # which input slots get gradients: the selected args' leaves, then captured Values
        arg_slots: list[range] = []
        pos = 0
        for a, s in zip(args, self.specs, strict=True):
            k: list[Any] = []
            leaves(a, s, k)
            arg_slots.append(range(pos, pos + len(k)))
            pos += len(k)
        self.arg_slots = arg_slots
        wrt = [slot for i in self.argnums for slot in arg_slots[i]]
        wrt += list(range(pos, pos + len(captured)))
        self.wrt = wrt
        t1 = time.perf_counter()
        self.num_nodes, self.source, self.run, self.method = _build(root, inputs + captured_leaves, wrt, method,
                                                                    codegen_limit)
        self.build_seconds = time.perf_counter() - t1

    def inputs(self, args: tuple[Any, ...]) -> list[float]:
        flat: list[float] = []
        for i, (a, s) in enumerate(zip(args, self.specs, strict=True)):
            collect(a, s, flat, f"#{i}")
        for v in self.captured:
            flat.append(DATA.__get__(v))
        return flat


class Compiled:
    """A function compiled to run on floats, once per argument structure.  Made by :func:`compile`.

    Call it like the original function to get ``(value, grads)``: ``grads``
    holds, for each argument selected by ``argnums``, its gradient shaped like
    the argument (a float, or a list/tuple of them; None for a static
    argument); with an int ``argnums`` it is that argument's gradient alone.
    :meth:`backward` instead adds the gradients to the ``grad`` of the Values
    involved and returns the value: a drop-in training step.

    **The cache.** Each call's arguments have a structure (:func:`key`): how
    many there are, the nesting and lengths of lists and tuples, and the type
    and value of each *static* argument (one named in ``static_argnums``, or
    a bool, str or None passed directly as an argument: ``f`` receives it as
    it is and may loop or branch on it).  The first call with a structure traces ``f`` and compiles it (a
    miss); later calls with that structure run the compiled code (a hit).  The
    ``cache_size`` most recently used structures are kept (LRU);
    :meth:`cache_info` counts hits and misses.  Numbers (inside lists too, ints
    included) and Values are inputs, never part of the structure: to pick by
    a number, use :func:`microgrannd.gather`.

    Attributes (of the trace used by the last call, or made from the example):
        graph: the traced output Value (an ordinary graph: draw it, inspect it).
        source: the generated Python (``None`` for the tape back end).
        method: ``"codegen"`` or ``"tape"``.
        num_nodes: nodes in the traced graph.
        captured: Values reached by closure, read at every call.
        trace_seconds / build_seconds: time spent tracing and generating.
    """

    def __init__(self, f: Callable[..., Any], argnums: Any, method: str,
                 codegen_limit: int = CODEGEN_MAX_LINES, cache_size: int = CACHE_SIZE,
                 static_argnums: int | Sequence[int] = ()) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"compile: cache_size must be a positive int, not {cache_size!r}")
        self.__name__ = getattr(f, "__name__", "f")
        self._f = f
        self._argnums = argnums
        self._single = isinstance(argnums, int)
        self._method = method
        self._limit = codegen_limit
        self._maxsize = cache_size
        given = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in given):
            raise ValueError(f"compile: static_argnums must be non-negative ints, not {static_argnums!r}")
        self._static = given
        self._cache: OrderedDict[tuple[Any, ...], _Trace] = OrderedDict()
        self._lock = threading.RLock()
        self._hits = self._misses = 0
        self._seconds = 0.0
        self._last: _Trace | None = None

    def _trace_for(self, args: tuple[Any, ...]) -> _Trace:
        """The compiled trace for the structure of ``args``, traced now on a miss."""
        k = key(args, self._static)
        with self._lock:
            t = self._cache.get(k)
            if t is not None:
                self._hits += 1
                self._cache.move_to_end(k)
            else:
                self._misses += 1
                t = _Trace(self._f, args, self._argnums, self._method, self._limit, self._static)
                self._seconds += t.trace_seconds + t.build_seconds
                self._cache[k] = t
                if len(self._cache) > self._maxsize:
                    self._cache.popitem(last=False)
            self._last = t
        return t

    def __call__(self, *args: Any) -> tuple[float, Any]:
        """Return ``(value, gradients)`` for new inputs (see the class docstring)."""
        t = self._trace_for(args)
        value, g = t.run(t.inputs(args))
        grads: list[Any] = []
        pos = 0
        for i in t.argnums:
            part, pos = rebuild(t.specs[i], g, pos)
            grads.append(part)
        return value, (grads[0] if self._single else tuple(grads))

    def backward(self, *args: Any) -> float:
        """Compute the value and add the gradients to the ``grad`` of the Values.

        Every captured Value, and every Value among the arguments selected by
        ``argnums``, gets ``grad += d value / d itself`` (as
        ``f(...).backward()`` would); zero the gradients between steps as
        usual.  Returns the value.
        """
        t = self._trace_for(args)
        value, g = t.run(t.inputs(args))
        k = 0
        for i in t.argnums:
            a = args[i]
            s = t.specs[i]
            if s is STATIC:
                continue
            if s is None:
                targets = [a]
            elif s[2]:
                targets = a
            else:
                targets = []
                leaves(a, s, targets)
            for v in targets:
                if isinstance(v, Value):
                    v.grad += g[k]
                k += 1
        for v in t.captured:
            v.grad += g[k]
            k += 1
        return value

    def cache_info(self) -> CacheInfo:
        """Hits, misses (traces), the cache's bound and size, and the time spent compiling."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, self._maxsize, len(self._cache), self._seconds)

    def cache_clear(self) -> None:
        """Forget every compiled trace and reset the counters."""
        with self._lock:
            self._cache.clear()
            self._hits = self._misses = 0
            self._seconds = 0.0
            self._last = None

    def _current(self) -> _Trace:
        if self._last is None:
            raise RuntimeError(f"compiled {self.__name__} has not been traced yet: call it first "
                               "(or give example arguments to compile)")
        return self._last

    @property
    def graph(self) -> Value:
        """The traced output Value of the last call's trace."""
        return self._current().graph

    @property
    def source(self) -> str | None:
        """The generated Python of the last call's trace (None for the tape)."""
        return self._current().source

    @property
    def method(self) -> str:
        """``"codegen"`` or ``"tape"``, for the last call's trace."""
        return self._current().method

    @property
    def num_nodes(self) -> int:
        """Nodes in the last call's traced graph."""
        return self._current().num_nodes

    @property
    def captured(self) -> list[Value]:
        """Values the last call's trace reached by closure (read at every call)."""
        return self._current().captured

    @property
    def trace_seconds(self) -> float:
        """Time spent tracing the last call's structure."""
        return self._current().trace_seconds

    @property
    def build_seconds(self) -> float:
        """Time spent generating and compiling the last call's trace."""
        return self._current().build_seconds

    @property
    def compile_seconds(self) -> float:
        """Tracing plus code generation (and CPython's compile) time of the last call's trace."""
        return self.trace_seconds + self.build_seconds

    def __repr__(self) -> str:
        info = self.cache_info()
        cache = f"{info.currsize} cached, {info.hits} hits, {info.misses} misses"
        if self._last is None:
            return f"<compiled {self.__name__}: not traced yet>"
        t = self._last
        return (f"<compiled {self.__name__}: {t.num_nodes} nodes, {t.method}, {len(t.wrt)} gradients, "
                f"compiled in {t.trace_seconds + t.build_seconds:.3f} s; {cache}>")


def compile(f: Callable[..., Any], *example_args: Any, argnums: int | Sequence[int] | None = None,
            method: str = "auto", codegen_limit: int = CODEGEN_MAX_LINES,
            cache_size: int = CACHE_SIZE, static_argnums: int | Sequence[int] = ()) -> Compiled:
    """Compile ``f`` to plain-float code, once per argument structure.

    Args:
        f: a function of numbers/Values (or lists/tuples of them, and static
            arguments) returning a scalar (a Value or a number).
        example_args: if given, ``f`` is traced on them now (errors show at
            once); otherwise at the first call.  Later calls with another
            structure (other list lengths, other static values) trace again.
        argnums: which arguments get gradients (an int, a sequence, or None
            for all); the others are still inputs, read at every call.
        method: ``"codegen"``, ``"tape"`` or ``"auto"`` (code generation up to
            ``codegen_limit`` lines of code, the tape above).
        codegen_limit: the most lines of generated code (default
            :data:`CODEGEN_MAX_LINES`); ``method="codegen"`` on a larger
            graph raises ``ValueError`` rather than exhaust memory.
        cache_size: how many structures' compiled code to keep (default
            :data:`CACHE_SIZE`); the least recently used goes first.
        static_argnums: the positions of arguments that are not numbers but
            choose the structure (a layer count, a length): ``f`` receives
            them as they are, each value is traced once and they get no
            gradient.  A bool, str or None argument is always static; an int
            is a number input unless its position is listed here.

    Returns:
        A :class:`Compiled` function: ``compiled(*args) -> (value, grads)``,
        ``compiled.backward(*args) -> value`` and ``compiled.cache_info()``.

    Raises:
        TraceError: ``f`` branched on (or read) a traced Value's number.
    """
    if method not in ("auto", "codegen", "tape"):
        raise ValueError(f"method must be 'auto', 'codegen' or 'tape', not {method!r}")
    c = Compiled(f, argnums, method, codegen_limit, cache_size, static_argnums)
    if example_args:
        c._trace_for(example_args)
    return c


# --------------------------------------------------------------------------
# Building the runner


def _too_big(n: int, what: str, limit: int) -> ValueError:
    return ValueError(
        f"compile: the graph needs {n:,} {what}; generating more than {limit:,} lines of code "
        "would need gigabytes of memory in CPython's compiler. Use method='tape' (or 'auto'), "
        "or pass a larger codegen_limit.")


def _check_memory(needed: int, what: str) -> None:
    """Raise MemoryError if ``needed`` bytes exceed the memory available (Linux only)."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return
    if needed > available:
        raise MemoryError(f"compile: {what} needs about {needed / 2**20:,.0f} MB, "
                          f"but only {available / 2**20:,.0f} MB are available")


def _build(root: Value, inputs: list[Value], wrt: list[int], method: str, limit: int
           ) -> tuple[int, str | None, Callable[[list[float]], tuple[float, list[float]]], str]:
    order = toposort(root)  # the engine's order: backward accumulates in its order
    forward = _evaluation_order(root)
    n = len(order)
    if method == "codegen" and n > limit:
        raise _too_big(n, "nodes", limit)
    if method == "auto" and n > limit:
        method = "tape"
    slot = {v: i for i, v in enumerate(inputs)}
    # constant folding: a node is variable iff it depends on an input
    variable: set[Value] = set()
    for v in order:
        if v in slot or any(p in variable for p in v.parents):
            variable.add(v)
    wrt_nodes = {inputs[i] for i in wrt}
    needs: set[Value] = set()  # nodes whose gradient reaches a wrt input
    for v in order:
        if v in wrt_nodes or (v.parents and any(p in needs for p in v.parents)):
            needs.add(v)
    if method in ("codegen", "auto"):
        try:
            source, run = codegen(root, forward, order, inputs, slot, variable, needs, wrt, limit)
            return n, source, run, "codegen"
        except TooBig as e:
            if method == "codegen":
                raise _too_big(e.args[0], "lines", limit) from None
    _check_memory(n * TAPE_BYTES_PER_NODE, f"a tape for {n:,} nodes")
    return n, None, tape(root, forward, order, inputs, variable, needs, wrt), "tape"


def _evaluation_order(root: Value) -> list[Value]:
    """Parents before children, first parent first: the order Python evaluated them.

    Running the forward pass in this order makes a compiled function meet
    domain errors in the same order as the original code.
    """
    order: list[Value] = []
    seen: set[Value] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:
        v, expanded = stack.pop()
        if expanded:
            order.append(v)
        elif v not in seen:
            seen.add(v)
            stack.append((v, True))
            stack.extend((p, False) for p in reversed(v.parents) if p not in seen)
    return order


