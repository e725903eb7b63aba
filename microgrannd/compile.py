"""Trace once, run at the speed of plain floats.

``microgrannd.compile(f, *example_args)`` runs ``f`` once on Values to record
its graph, then turns the graph into a function of plain floats that computes
``f``'s value and its gradients without creating a single Value::

    def loss(w, b, xs, ys):
        return sum(((w * x + b) - y) ** 2 for x, y in zip(xs, ys))

    c = microgrannd.compile(loss, 0.5, 0.0, [1.0, 2.0], [2.0, 4.0], argnums=(0, 1))
    value, (dw, db) = c(0.7, 0.1, [1.0, 2.0, 3.0][:2], [2.0, 4.0])
    print(c.source)          # the generated straight-line Python

Two back ends run the recorded graph (``method=``):

* ``"codegen"`` (the default up to :data:`CODEGEN_MAX_LINES` lines) writes
  one line of Python per node for the forward pass and one per gradient
  contribution for the backward pass, constants folded into literals,
  ``g * 1.0`` and gradient copies folded away, and locals reused once a
  value is dead (few locals make CPython run such code much faster).  Expressions
  come from the primitive table: each rule is evaluated once on symbolic
  operands (``mul: (b, a)`` renders as ``b``), or taken from the primitive's
  optional ``forward_code`` / ``derivatives_code`` templates; a primitive with
  neither is called through its ``forward`` / ``derivatives`` functions, so
  every primitive of the table compiles.
* ``"tape"`` keeps the graph as a flat list of instructions run by a tight
  loop; bounded memory, used for graphs above the code-generation limit.

**Arguments.** Each argument is a number, a Value, or a (nested) list or
tuple of them; every number or Value in them is an input.  Values that ``f``
reaches by closure (a model's parameters, say) and that require gradients are
*captured*: the compiled function reads their ``data`` at every call, and
:meth:`Compiled.backward` adds their gradients to their ``grad``, exactly as
``loss.backward()`` would.  Plain numbers and constant Values that ``f`` uses
are folded into the code.

**Honest tracing.** While tracing, reading a traced Value's number in a way
that could steer Python (``if v > 0``, ``bool(v)``, ``float(v)``, ``v.data``,
comparisons, ``max(v, w)``) raises :class:`TraceError` naming the file and
line: the compiled function would otherwise silently reuse the branch taken
with the example inputs.  Use a primitive (``relu``, ...) to express the
branch, or do the data-dependent work outside ``f``.  Values ``f`` reaches by
closure are checked by a second trace.
"""

from __future__ import annotations

import builtins
import linecache
import math
import numbers
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from microgrannd import engine
from microgrannd.engine import Value, toposort
from microgrannd.ops import PRIMITIVES, Primitive

__all__ = ["CODEGEN_MAX_LINES", "Compiled", "TraceError", "compile"]

#: Above this many lines of generated code ``method="auto"`` uses the tape:
#: CPython's compiler needs about 3 KB per line while compiling (micrograd's
#: demo step, 66,000 nodes, is 170,000 lines: about 0.5 GB and 1.5 s).
CODEGEN_MAX_LINES = 300_000
#: Memory the tape back end needs per node, beyond the traced graph (measured
#: about 300 bytes); checked against the memory available before building.
TAPE_BYTES_PER_NODE = 400

_DATA = Value.__dict__["data"]  # the slot descriptor: reads that bypass the guard
_ENGINE_GLOBALS = vars(engine)
_DETACH = Value.detach.__code__


class TraceError(RuntimeError):
    """The traced function read a Value's number in a way the graph cannot record."""


# --------------------------------------------------------------------------
# Tracing: a Value subclass whose number cannot steer Python


def _user_frame(depth: int) -> str:
    """``file:line (source)`` of the first caller outside this module and the engine."""
    frame = sys._getframe(depth + 1)
    while frame is not None and frame.f_globals.get("__name__") in (__name__, "microgrannd.engine"):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "<unknown place>"
    code = frame.f_code
    text = linecache.getline(code.co_filename, frame.f_lineno).strip()
    where = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
    return f"{where}: {text}" if text else where


def _refuse(what: str) -> TraceError:
    return TraceError(
        f"{what} of a traced Value at {_user_frame(2)}\n"
        "A compiled function replays the graph recorded while tracing, so a Python decision "
        "taken on the example's numbers would silently be reused for every other input. "
        "Express it with a primitive (relu, ...), or move it out of the compiled function."
    )


def _get_data(self: Value) -> float:
    caller = sys._getframe(1)
    if caller.f_globals is _ENGINE_GLOBALS and caller.f_code is not _DETACH:  # the engine computing
        return _DATA.__get__(self)
    raise _refuse("reading .data")


def _set_data(self: Value, x: float) -> None:
    _DATA.__set__(self, x)


class _Traced(Value):
    """A node recorded while tracing: its number is not for Python to branch on."""

    __slots__ = ()

    data = property(_get_data, _set_data)

    def __bool__(self) -> bool:
        raise _refuse("bool()")

    def __float__(self) -> float:
        raise _refuse("float()")

    def __lt__(self, other: Any) -> bool:
        raise _refuse("comparison (<)")

    def __le__(self, other: Any) -> bool:
        raise _refuse("comparison (<=)")

    def __gt__(self, other: Any) -> bool:
        raise _refuse("comparison (>)")

    def __ge__(self, other: Any) -> bool:
        raise _refuse("comparison (>=)")

    __hash__ = Value.__hash__


# --------------------------------------------------------------------------
# Arguments: nested lists/tuples of numbers and Values

# A spec is None for a scalar, or (list|tuple, [child specs], all_scalar).
Spec = Any


def _spec(obj: Any, where: str) -> Spec:
    if isinstance(obj, Value) or (isinstance(obj, numbers.Real) and not isinstance(obj, bool)):
        return None
    if isinstance(obj, list | tuple):
        children = [_spec(x, f"{where}[{i}]") for i, x in enumerate(obj)]
        return (type(obj), children, all(c is None for c in children))
    raise TypeError(
        f"compile: argument {where} is a {type(obj).__name__}; arguments must be numbers, "
        "Values, or lists/tuples of them (capture anything else by closure)"
    )


def _leaves(obj: Any, spec: Spec, out: list[Any]) -> None:
    if spec is None:
        out.append(obj)
    else:
        for x, s in zip(obj, spec[1], strict=True):
            _leaves(x, s, out)


def _scalar(x: Any) -> float:
    if isinstance(x, Value):
        return _DATA.__get__(x)
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return float(x)
    raise TypeError(f"compiled function: expected a number or a Value, got {type(x).__name__}")


def _collect(obj: Any, spec: Spec, out: list[float], where: str) -> None:
    """Append the numbers of ``obj`` (shaped like ``spec``) to ``out``."""
    if spec is None:
        out.append(obj if type(obj) is float else _scalar(obj))
        return
    if not isinstance(obj, list | tuple) or len(obj) != len(spec[1]):
        n = len(spec[1])
        got = f"length {len(obj)}" if isinstance(obj, list | tuple) else type(obj).__name__
        raise TypeError(f"compiled function: argument {where} must be a sequence of length {n} "
                        f"(as when compiled), got {got}")
    if spec[2]:
        out.extend([x if type(x) is float else _scalar(x) for x in obj])
    else:
        for i, (x, s) in enumerate(zip(obj, spec[1], strict=True)):
            _collect(x, s, out, f"{where}[{i}]")


def _rebuild(spec: Spec, flat: Sequence[float], pos: int) -> tuple[Any, int]:
    """Shape ``flat[pos:]`` like ``spec``; return it and the next position."""
    if spec is None:
        return flat[pos], pos + 1
    kind, children, all_scalar = spec
    if all_scalar:
        part = list(flat[pos:pos + len(children)])
        return (part if kind is list else tuple(part)), pos + len(children)
    items = []
    for s in children:
        item, pos = _rebuild(s, flat, pos)
        items.append(item)
    return (items if kind is list else tuple(items)), pos


# --------------------------------------------------------------------------
# Rendering the primitive table as code: rules evaluated on symbols


class _NotSymbolic(Exception):
    pass


def _literal(x: float) -> str:
    if x != x or x in (math.inf, -math.inf):
        return {"nan": "_NAN", "inf": "_INF", "-inf": "_NINF"}[repr(x)]
    text = repr(float(x))
    return f"({text})" if text.startswith("-") else text


def _is_literal(code: str) -> bool:
    try:
        float(code.strip("()"))
    except ValueError:
        return False
    return True


class _Sym:
    """A symbolic operand: arithmetic on it writes the code that the float path runs."""

    __slots__ = ("code",)

    def __init__(self, code: str) -> None:
        self.code = code

    @staticmethod
    def _of(x: Any) -> str:
        if isinstance(x, _Sym):
            return x.code
        if isinstance(x, numbers.Real) and not isinstance(x, bool):
            return _literal(float(x))
        raise _NotSymbolic

    def _bin(self, other: Any, op: str, reflected: bool = False) -> _Sym:
        a, b = self.code, self._of(other)
        return _Sym(f"({b} {op} {a})" if reflected else f"({a} {op} {b})")

    def __add__(self, o: Any) -> _Sym: return self._bin(o, "+")
    def __radd__(self, o: Any) -> _Sym: return self._bin(o, "+", True)
    def __sub__(self, o: Any) -> _Sym: return self._bin(o, "-")
    def __rsub__(self, o: Any) -> _Sym: return self._bin(o, "-", True)
    def __mul__(self, o: Any) -> _Sym: return self._bin(o, "*")
    def __rmul__(self, o: Any) -> _Sym: return self._bin(o, "*", True)
    def __truediv__(self, o: Any) -> _Sym: return self._bin(o, "/")
    def __rtruediv__(self, o: Any) -> _Sym: return self._bin(o, "/", True)
    def __neg__(self) -> _Sym: return _Sym(f"(-{self.code})")
    def __pos__(self) -> _Sym: return self

    # ``x ** n`` on a Value records the pow primitive: render its forward.
    def __pow__(self, o: Any) -> _Sym: return _Sym(f"_F_pow({self.code}, {self._of(o)})")
    def __rpow__(self, o: Any) -> _Sym: raise _NotSymbolic

    def __getattr__(self, name: str) -> Callable[[], _Sym]:
        # ``x.exp()`` etc. on a Value records a unary primitive: render its forward.
        p = PRIMITIVES.get(name)
        if p is None or p.arity != 1 or name.startswith("_"):
            raise _NotSymbolic
        return lambda: _Sym(f"_F_{name}({self.code})")

    def __bool__(self) -> bool: raise _NotSymbolic
    def __float__(self) -> float: raise _NotSymbolic
    def __index__(self) -> int: raise _NotSymbolic
    def __lt__(self, o: Any) -> bool: raise _NotSymbolic
    def __le__(self, o: Any) -> bool: raise _NotSymbolic
    def __gt__(self, o: Any) -> bool: raise _NotSymbolic
    def __ge__(self, o: Any) -> bool: raise _NotSymbolic
    def __eq__(self, o: Any) -> bool: raise _NotSymbolic
    def __ne__(self, o: Any) -> bool: raise _NotSymbolic
    __hash__ = object.__hash__


def _code_of(x: Any) -> str:
    if isinstance(x, _Sym):
        return x.code
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return _literal(float(x))
    raise _NotSymbolic


def _operands(prim: Primitive, consts: tuple[float | None, ...]) -> list[Any]:
    """Symbols ``{0}``, ``{1}`` ... for the inputs; floats for constant_args."""
    return [c if (i in prim.constant_args and c is not None) else _Sym(f"{{{i}}}")
            for i, c in enumerate(consts)]


def forward_template(prim: Primitive, consts: tuple[float | None, ...]) -> tuple[str, bool]:
    """Code computing ``prim.forward`` (``{i}`` for input i) and whether it is inlined.

    ``consts`` gives, per input, its value when it is a constant (only the
    primitive's ``constant_args`` are substituted).
    """
    if prim.forward_code is not None:
        return f"({prim.forward_code})", True
    try:
        return _code_of(prim.forward(*_operands(prim, consts))), True
    except Exception:  # any rule that cannot run on symbols is called instead
        args = ", ".join(f"{{{i}}}" for i in range(prim.arity))
        return f"_F_{prim.name}({args})", False


def derivatives_templates(prim: Primitive, consts: tuple[float | None, ...]) -> tuple[str, ...] | None:
    """Code for each local derivative (``{i}`` inputs, ``{out}`` output), or None.

    None means the rule cannot be written as code and must be called.
    """
    if prim.derivatives_code is not None:
        return tuple(f"({code})" for code in prim.derivatives_code)
    try:
        ds = prim.derivatives(*_operands(prim, consts), _Sym("{out}"))
        codes = tuple(_code_of(d) for d in ds)
    except Exception:
        return None
    return codes if len(codes) == prim.arity else None


def _namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {"_NAN": math.nan, "_INF": math.inf, "_NINF": -math.inf,
                          "__builtins__": {}}
    for name, p in PRIMITIVES.items():
        ns[f"_F_{name}"] = p.forward
        ns[f"_D_{name}"] = p.derivatives
        ns[f"_V_{name}"] = p.valid
        ns[f"_P_{name}"] = p
    return ns


# --------------------------------------------------------------------------
# The compiled function


class Compiled:
    """A traced function compiled to run on floats.  Made by :func:`compile`.

    Call it like the original function (same argument structure, numbers or
    Values) to get ``(value, grads)``: ``grads`` holds, for each argument
    selected by ``argnums``, its gradient shaped like the argument (a float,
    or a list/tuple of them); with an int ``argnums`` it is that argument's
    gradient alone.  :meth:`backward` instead adds the gradients to the
    ``grad`` of the Values involved and returns the value: a drop-in training
    step.

    Attributes:
        graph: the traced output Value (an ordinary graph: draw it, inspect it).
        source: the generated Python (``None`` for the tape back end).
        method: ``"codegen"`` or ``"tape"``.
        num_nodes: nodes in the traced graph.
        captured: Values reached by closure, read at every call.
        trace_seconds / build_seconds: time spent tracing and generating.
    """

    def __init__(self, f: Callable[..., Any], args: tuple[Any, ...], argnums: Any, method: str,
                 codegen_limit: int = CODEGEN_MAX_LINES) -> None:
        t0 = time.perf_counter()
        self.__name__ = getattr(f, "__name__", "f")
        self._specs = [_spec(a, f"#{i}") for i, a in enumerate(args)]
        n = len(args)
        if argnums is None:
            self._argnums: tuple[int, ...] = tuple(range(n))
        else:
            idx = (argnums,) if isinstance(argnums, int) else tuple(argnums)
            for i in idx:
                if not -n <= i < n:
                    raise IndexError(f"argnums {i} out of range for {n} arguments")
            self._argnums = tuple(i % n for i in idx)
        self._single = isinstance(argnums, int)
        self._nargs = n
        root, inputs, captured = _trace(f, args, self._specs)
        self.trace_seconds = time.perf_counter() - t0
        self.graph = root
        self.captured = captured
        # which input slots get gradients: the selected args' leaves, then captured Values
        arg_slots: list[range] = []
        pos = 0
        for a, s in zip(args, self._specs, strict=True):
            k: list[Any] = []
            _leaves(a, s, k)
            arg_slots.append(range(pos, pos + len(k)))
            pos += len(k)
        self._arg_slots = arg_slots
        wrt = [slot for i in self._argnums for slot in arg_slots[i]]
        wrt += list(range(pos, pos + len(captured)))
        self._wrt = wrt
        t1 = time.perf_counter()
        self.num_nodes, self.source, self._run, self.method = _build(root, inputs + captured, wrt, method,
                                                              codegen_limit)
        self.build_seconds = time.perf_counter() - t1

    @property
    def compile_seconds(self) -> float:
        """Tracing plus code generation (and CPython's compile) time."""
        return self.trace_seconds + self.build_seconds

    def _inputs(self, args: tuple[Any, ...]) -> list[float]:
        if len(args) != self._nargs:
            raise TypeError(f"{self.__name__} was compiled with {self._nargs} arguments, got {len(args)}")
        flat: list[float] = []
        for i, (a, s) in enumerate(zip(args, self._specs, strict=True)):
            _collect(a, s, flat, f"#{i}")
        for v in self.captured:
            flat.append(_DATA.__get__(v))
        return flat

    def __call__(self, *args: Any) -> tuple[float, Any]:
        """Return ``(value, gradients)`` for new inputs (see the class docstring)."""
        value, g = self._run(self._inputs(args))
        grads: list[Any] = []
        pos = 0
        for i in self._argnums:
            part, _ = _rebuild(self._specs[i], g, pos)
            pos += len(self._arg_slots[i])
            grads.append(part)
        return value, (grads[0] if self._single else tuple(grads))

    def backward(self, *args: Any) -> float:
        """Compute the value and add the gradients to the ``grad`` of the Values.

        Every captured Value, and every Value among the arguments selected by
        ``argnums``, gets ``grad += d value / d itself`` (as
        ``f(...).backward()`` would); zero the gradients between steps as
        usual.  Returns the value.
        """
        value, g = self._run(self._inputs(args))
        k = 0
        for i in self._argnums:
            a = args[i]
            s = self._specs[i]
            if s is None:
                targets = [a]
            elif s[2]:
                targets = a
            else:
                targets = []
                _leaves(a, s, targets)
            for v in targets:
                if isinstance(v, Value):
                    v.grad += g[k]
                k += 1
        for v in self.captured:
            v.grad += g[k]
            k += 1
        return value

    def __repr__(self) -> str:
        return (f"<compiled {self.__name__}: {self.num_nodes} nodes, {self.method}, "
                f"{len(self._wrt)} gradients, compiled in {self.compile_seconds:.3f} s>")


def compile(f: Callable[..., Any], *example_args: Any, argnums: int | Sequence[int] | None = None,
            method: str = "auto", codegen_limit: int = CODEGEN_MAX_LINES) -> Compiled:
    """Trace ``f`` on ``example_args`` and compile its graph to plain-float code.

    Args:
        f: a function of numbers/Values (or lists/tuples of them) returning a
            scalar (a Value or a number).
        example_args: arguments to trace with; the compiled function takes
            arguments of the same structure (list lengths included).
        argnums: which arguments get gradients (an int, a sequence, or None
            for all); the others are still inputs, read at every call.
        method: ``"codegen"``, ``"tape"`` or ``"auto"`` (code generation up to
            ``codegen_limit`` lines of code, the tape above).
        codegen_limit: the most lines of generated code (default
            :data:`CODEGEN_MAX_LINES`); ``method="codegen"`` on a larger
            graph raises ``ValueError`` rather than exhaust memory.

    Returns:
        A :class:`Compiled` function: ``compiled(*args) -> (value, grads)`` and
        ``compiled.backward(*args) -> value``.

    Raises:
        TraceError: ``f`` branched on (or read) a traced Value's number.
    """
    if method not in ("auto", "codegen", "tape"):
        raise ValueError(f"method must be 'auto', 'codegen' or 'tape', not {method!r}")
    return Compiled(f, example_args, argnums, method, codegen_limit)


# --------------------------------------------------------------------------
# Tracing


def _trace(f: Callable[..., Any], args: tuple[Any, ...], specs: list[Spec]
           ) -> tuple[Value, list[Value], list[Value]]:
    """Run ``f`` on guarded Values; return (root, input leaves, captured Values)."""
    leaves: list[Any] = []
    for a, s in zip(args, specs, strict=True):
        _leaves(a, s, leaves)
    inputs: list[Value] = []
    seen: set[int] = set()
    for x in leaves:
        if isinstance(x, Value):
            if id(x) in seen:
                raise ValueError("compile: the same Value appears twice among the arguments")
            if x.parents:
                raise ValueError("compile: Value arguments must be leaves (inputs or parameters)")
            seen.add(id(x))
            inputs.append(x)
        else:
            inputs.append(Value(float(x)))
    root, found = _trace_once(f, args, specs, inputs, inputs)
    if not found:
        return root, inputs, []
    # Values reached by closure: trace again with them guarded too, so that a
    # read of their number is caught as well.  Leaves present in both traces
    # are captured; those new in the second were made by f itself (constants).
    root, again = _trace_once(f, args, specs, inputs, inputs + found)
    first = set(found)
    return root, inputs, [v for v in again if v in first]


def _trace_once(f: Callable[..., Any], args: tuple[Any, ...], specs: list[Spec],
                inputs: list[Value], guarded: list[Value]
                ) -> tuple[Value, list[Value]]:
    swapped = [(v, type(v)) for v in guarded]
    for v, cls in swapped:
        if cls is not Value and cls is not _Traced:
            raise TypeError(f"compile: cannot trace a {cls.__name__} (a Value subclass)")
        v.__class__ = _Traced
    # Rebuild the arguments with the guarded leaves in place of the numbers.
    it = iter(inputs)
    traced_args = [_substitute(a, s, it) for a, s in zip(args, specs, strict=True)]
    try:
        with engine.tracing(_Traced):
            out = f(*traced_args)
    finally:
        for v, _ in swapped:
            v.__class__ = Value
    if not isinstance(out, Value):
        if isinstance(out, numbers.Real) and not isinstance(out, bool):
            out = Value(float(out), requires_grad=False)
        else:
            raise TypeError(f"compile: {getattr(f, '__name__', 'f')} must return a scalar "
                            f"(a Value or a number), not {type(out).__name__}")
    order = toposort(out)
    input_set = set(inputs)
    found: list[Value] = []
    for v in order:
        if type(v) is _Traced:
            v.__class__ = Value  # type: ignore[assignment]
            if not v.parents and v not in input_set:
                raise TraceError(
                    "a node recorded under no_grad() inside the traced function feeds the result: "
                    "its number would be baked into the compiled code")
        elif not v.parents and v.requires_grad and v not in input_set:
            found.append(v)
    return out, found


def _substitute(obj: Any, spec: Spec, it: Any) -> Any:
    if spec is None:
        return next(it)
    items = [_substitute(x, s, it) for x, s in zip(obj, spec[1], strict=True)]
    return items if spec[0] is list else tuple(items)


# --------------------------------------------------------------------------
# Building the runner


class _TooBig(Exception):
    pass


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
            source, run = _codegen(root, forward, order, inputs, slot, variable, needs, wrt, limit)
            return n, source, run, "codegen"
        except _TooBig as e:
            if method == "codegen":
                raise _too_big(e.args[0], "lines", limit) from None
    _check_memory(n * TAPE_BYTES_PER_NODE, f"a tape for {n:,} nodes")
    return n, None, _tape(root, forward, order, inputs, slot, variable, needs, wrt), "tape"


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


def _codegen(root: Value, forward: list[Value], order: list[Value], inputs: list[Value],
             slot: dict[Value, int],
             variable: set[Value], needs: set[Value], wrt: list[int], limit: int
             ) -> tuple[str, Callable[[list[float]], tuple[float, list[float]]]]:
    name: dict[Value, str] = {}
    for v, i in slot.items():
        name[v] = f"x{i}"
    lines = ["def compiled(_in):"]
    if inputs:
        lines.append(f"    {', '.join(name[v] for v in inputs)}, = _in")
    fwd_cache: dict[tuple[str, tuple[float | None, ...]], tuple[str, bool]] = {}
    drv_cache: dict[tuple[str, tuple[float | None, ...]], tuple[str, ...] | None] = {}
    keys: dict[Value, tuple[str, tuple[float | None, ...]]] = {}
    k = 0
    for v in forward:
        if v in slot:
            continue
        if v not in variable:
            name[v] = _literal(_DATA.__get__(v))
            continue
        prim = PRIMITIVES[v.op]
        consts = tuple(None if p in variable else _DATA.__get__(p) for p in v.parents)
        key = (prim.name, tuple(c if i in prim.constant_args else None for i, c in enumerate(consts)))
        keys[v] = key
        if key not in fwd_cache:
            fwd_cache[key] = forward_template(prim, key[1])
        ops = [name[p] for p in v.parents]
        if prim.valid is not None:
            args = ", ".join(ops)
            lines.append(f"    if not _V_{prim.name}({args}): _P_{prim.name}.check({args})")
        name[v] = f"v{k}"
        k += 1
        lines.append(f"    {name[v]} = {fwd_cache[key][0].format(*ops)}")
    # backward: reversed order, parent slots in order (the engine's order)
    gname: dict[Value, str] = {}
    if root in needs:
        gname[root] = "1.0"
    lines.append("    # backward")
    k = 0
    for v in reversed(order):
        if not v.parents or v not in needs or v not in gname:
            continue
        g = gname[v]
        prim = PRIMITIVES[v.op]
        key = keys[v]
        if key not in drv_cache:
            drv_cache[key] = derivatives_templates(prim, key[1])
        ops = [name[p] for p in v.parents]
        codes = drv_cache[key]
        if codes is None:
            lines.append(f"    _d = _D_{prim.name}({', '.join(ops)}, {name[v]})")
            codes = tuple(f"_d[{j}]" for j in range(prim.arity))
        for j, p in enumerate(v.parents):
            if p not in needs or j in prim.constant_args:
                continue
            d = codes[j].format(*ops, out=name[v])
            if d in ("0.0", "(-0.0)"):
                continue
            if d == "1.0":
                term = g
            elif g == "1.0":
                term = d
            else:
                term = f"{g} * {d}"
            # Gradient variables are assigned once (SSA): a copy or a constant
            # is shared instead of assigned, and a second path makes a new one.
            if p in gname:
                lines.append(f"    g{k} = {gname[p]} + {term}")
                gname[p], k = f"g{k}", k + 1
            elif term.isidentifier() or _is_literal(term):
                gname[p] = term
            else:
                gname[p], k = f"g{k}", k + 1
                lines.append(f"    {gname[p]} = {term}")
    grads = ", ".join(gname.get(inputs[i], "0.0") for i in wrt)
    lines.append(f"    return {name[root]}, ({grads}{',' if len(wrt) == 1 else ''})")
    if len(lines) > limit:
        raise _TooBig(len(lines))
    source = "\n".join(_allocate(lines)) + "\n"
    ns = _namespace()
    exec(builtins.compile(source, "<microgrannd.compile>", "exec"), ns)
    return source, ns["compiled"]


_NAME = re.compile(r"\b([vg]\d+)\b")


def _allocate(lines: list[str]) -> list[str]:
    """Rename the single-assignment variables ``v*``/``g*`` onto few reused locals ``r*``.

    A value's local is freed after the line that uses it last and reused by
    a later definition.  Fewer locals make the function run markedly faster in
    CPython (small frames, short local indices).
    """
    split = [_NAME.split(line) for line in lines]  # text, name, text, name, ...
    last: dict[str, int] = {}
    for i, parts in enumerate(split):
        for name in parts[1::2]:
            last[name] = i
    free: list[str] = []
    reg: dict[str, str] = {}
    count = 0
    for i, parts in enumerate(split):
        names = parts[1::2]
        target = names[0] if names and parts[0] == "    " and parts[2].startswith(" = ") else None
        used = names[1:] if target else names
        for k, name in enumerate(used, start=2 if target else 1):
            parts[2 * k - 1] = reg[name]
        for name in dict.fromkeys(used):  # in order of use: the same code in every process
            if last[name] == i:
                free.append(reg.pop(name))
        if target is not None:
            if free:
                r = free.pop()
            else:
                r, count = f"r{count}", count + 1
            if last[target] > i:
                reg[target] = r
            else:
                free.append(r)  # never read again: its local is free at once
            parts[1] = r
    return ["".join(parts) for parts in split]


def _checked(prim: Primitive) -> Callable[..., float]:
    if prim.valid is None:
        return prim.forward

    def forward(*xs: float) -> float:
        prim.check(*xs)
        return prim.forward(*xs)

    return forward


def _tape(root: Value, forward: list[Value], order: list[Value], inputs: list[Value], slot: dict[Value, int],
          variable: set[Value], needs: set[Value], wrt: list[int]
          ) -> Callable[[list[float]], tuple[float, list[float]]]:
    """A flat list of instructions over a list of floats, run by two tight loops."""
    index: dict[Value, int] = {v: i for i, v in enumerate(inputs)}
    base: list[float] = [0.0] * len(inputs)
    fwd: list[tuple[Any, ...]] = []
    for v in forward:
        if v in index:
            continue
        index[v] = len(base)
        base.append(_DATA.__get__(v))
        if v in variable:
            fn = _checked(PRIMITIVES[v.op])
            fwd.append((fn, index[v], *[index[p] for p in v.parents]))
    bwd: list[tuple[Any, ...]] = []
    for v in reversed(order):
        if v.parents and v in needs:
            bwd.append((PRIMITIVES[v.op].derivatives, index[v], *[index[p] for p in v.parents]))
    m = len(inputs)
    size = len(base)
    r = index[root]
    seeded = root in needs
    wrt_index = [index[inputs[i]] for i in wrt]

    def run(xs: list[float]) -> tuple[float, list[float]]:
        vals = base[:]
        vals[:m] = xs
        for ins in fwd:
            if len(ins) == 4:
                fn, k, i, j = ins
                vals[k] = fn(vals[i], vals[j])
            elif len(ins) == 3:
                fn, k, i = ins
                vals[k] = fn(vals[i])
            else:
                vals[ins[1]] = ins[0](*[vals[i] for i in ins[2:]])
        grads = [0.0] * size
        if seeded:
            grads[r] = 1.0
        for ins in bwd:
            if len(ins) == 4:
                rule, k, i, j = ins
                g = grads[k]
                da, db = rule(vals[i], vals[j], vals[k])
                grads[i] += g * da
                grads[j] += g * db
            elif len(ins) == 3:
                rule, k, i = ins
                (da,) = rule(vals[i], vals[k])
                grads[i] += grads[k] * da
            else:
                g = grads[ins[1]]
                ds = rule(*[vals[i] for i in ins[2:]], vals[ins[1]])
                for i, d in zip(ins[2:], ds, strict=True):
                    grads[i] += g * d
        return vals[r], [grads[i] for i in wrt_index]

    return run
