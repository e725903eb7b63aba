"""Code generation: a traced graph as straight-line Python on floats.

One line per node for the forward pass and one per gradient contribution for
the backward pass, constants folded into literals, gradient copies shared, and
locals reused once a value is dead (few locals make CPython run such code much
faster).  The expressions come from the primitive table: each rule is
evaluated once on symbolic operands (``mul: (g * b, g * a)`` renders as
``g3 * x1``), or taken from the primitive's ``forward_code`` / ``vjp_code``
templates; a rule that cannot run on symbols is called instead, so every
primitive of the table compiles.  A zero gradient sends nothing back here too:
a contribution that could be ``0 * inf`` is guarded (``... if g3 else 0.0``).
"""

from __future__ import annotations

import builtins
import math
import numbers
import re
from collections.abc import Callable
from typing import Any

from microgrannd.compile.trace import DATA
from microgrannd.engine import Value
from microgrannd.ops import PRIMITIVES, Primitive

__all__ = ["TooBig", "codegen", "forward_template", "namespace", "vjp_templates"]


class TooBig(Exception):
    """The generated code would exceed the line limit (its size is ``args[0]``)."""


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

    def _bin(self, other: Any, op: str, reflected: bool = False) -> _Sym:
        a, b = self.code, _code_of(other)
        if op == "*" and "1.0" in (a, b):  # g * 1.0: the gradient itself
            return _Sym(b if a == "1.0" else a)
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
    def __pow__(self, o: Any) -> _Sym: return _Sym(f"_F_pow({self.code}, {_code_of(o)})")
    def __rpow__(self, o: Any) -> _Sym: raise _NotSymbolic

    def _apply_primitive(self, prim: Primitive, args: tuple[Any, ...]) -> _Sym:
        """A primitive called inside a rule (``COS(a)``): its forward as code."""
        consts = tuple(a if isinstance(a, float) else None for a in args)
        template, _ = forward_template(prim, consts)
        return _Sym(template.format(*[_code_of(a) for a in args]))

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
    except Exception:  # any forward that cannot run on symbols is called instead
        args = ", ".join(f"{{{i}}}" for i in range(len(consts)))
        return f"_F_{prim.name}({args})", False


def vjp_templates(prim: Primitive, consts: tuple[float | None, ...], seed: bool = False
                  ) -> tuple[str, ...] | None:
    """Code for what each input receives (``{g}`` upstream, ``{i}`` inputs, ``{out}``), or None.

    With ``seed`` the upstream gradient is the literal 1.0 (the output's own
    node) and folded away.  None means the rule cannot be written as code and
    must be called, as a variadic primitive's (arity -1, gather) always is.
    """
    if prim.arity < 0:
        return None
    if prim.vjp_code is not None:
        return tuple(f"({code})" for code in prim.vjp_code)
    try:
        cs = prim.vjp(_Sym("1.0" if seed else "{g}"), *_operands(prim, consts), _Sym("{out}"))
        codes = tuple(_code_of(c) for c in cs)
    except Exception:
        return None
    return codes if len(codes) == len(consts) else None


def namespace() -> dict[str, Any]:
    """The globals of generated code: each primitive's functions by name, no builtins."""
    ns: dict[str, Any] = {"_NAN": math.nan, "_INF": math.inf, "_NINF": -math.inf,
                          "__builtins__": {}}
    for name, p in PRIMITIVES.items():
        ns[f"_F_{name}"] = p.forward
        ns[f"_D_{name}"] = p.vjp
        ns[f"_V_{name}"] = p.valid
        ns[f"_P_{name}"] = p
    return ns


_NAME = re.compile(r"\b([vg]\d+)\b")
_VARIABLE = re.compile(r"\b(?:[vgx]\d+|_d|_INF|_NINF|_NAN)\b")  # what may be inf or NaN


def _may_be_nan_at_zero(term: str, g: str) -> bool:
    """Whether ``term`` (upstream ``g`` times something) could be NaN when ``g`` is 0."""
    if term == g or term.startswith("_d[") or (_is_literal(g) and float(g.strip("()")) != 0.0):
        return False
    return _VARIABLE.search(re.sub(rf"\b{re.escape(g)}\b", "", term)) is not None


def codegen(root: Value, forward: list[Value], order: list[Value], inputs: list[Value],
            slot: dict[Value, int], variable: set[Value], needs: set[Value], wrt: list[int], limit: int
            ) -> tuple[str, Callable[[list[float]], tuple[float, list[float]]]]:
    """Generate, compile and return ``(source, function)`` for the graph of ``root``."""
    name: dict[Value, str] = {}
    for v, i in slot.items():
        name[v] = f"x{i}"
    lines = ["def compiled(_in):"]
    if inputs:
        lines.append(f"    {', '.join(name[v] for v in inputs)}, = _in")
    fwd_cache: dict[tuple[str, tuple[float | None, ...]], tuple[str, bool]] = {}
    vjp_cache: dict[tuple[str, tuple[float | None, ...], bool], tuple[str, ...] | None] = {}
    keys: dict[Value, tuple[str, tuple[float | None, ...]]] = {}
    k = 0
    for v in forward:
        if v in slot:
            continue
        if v not in variable:
            name[v] = _literal(DATA.__get__(v))
            continue
        prim = PRIMITIVES[v.op]
        consts = tuple(None if p in variable else DATA.__get__(p) for p in v.parents)
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
        vkey = (*keys[v], g == "1.0")
        if vkey not in vjp_cache:
            vjp_cache[vkey] = vjp_templates(prim, vkey[1], vkey[2])
        ops = [name[p] for p in v.parents]
        codes = vjp_cache[vkey]
        if codes is None:
            lines.append(f"    _d = _D_{prim.name}({g}, {', '.join(ops)}, {name[v]}) if {g} else "
                         f"({', '.join(['0.0'] * len(ops))},)")
            codes = tuple(f"_d[{j}]" for j in range(len(ops)))
        for j, p in enumerate(v.parents):
            if p not in needs or j in prim.constant_args:
                continue
            term = codes[j].format(*ops, out=name[v], g=g)
            if term in ("0.0", "(-0.0)"):
                continue
            if _may_be_nan_at_zero(term, g):
                term = f"({term} if {g} else 0.0)"  # a zero gradient sends nothing back, even times inf
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
        raise TooBig(len(lines))
    source = "\n".join(_allocate(lines)) + "\n"
    ns = namespace()
    exec(builtins.compile(source, "<microgrannd.compile>", "exec"), ns)
    return source, ns["compiled"]


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
