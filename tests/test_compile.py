"""microgrannd.compile: compiled graphs give the numbers of the uncompiled graph."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import microgrannd as mg
from microgrannd import PRIMITIVES, Value, apply, gradients
from microgrannd.compile import forward_template, vjp_templates

METHODS = ["codegen", "tape"]


def ulps(a: float, b: float) -> float:
    """Distance between two floats in units in the last place of the larger."""
    if a == b:
        return 0.0
    if math.isnan(a) and math.isnan(b):
        return 0.0
    return abs(a - b) / math.ulp(max(abs(a), abs(b)))


def reference(f: Callable[..., Any], xs: list[float]) -> tuple[float, list[float]]:
    """Value and gradients of ``f`` at ``xs``, through the uncompiled engine."""
    leaves = [Value(x) for x in xs]
    out = f(*leaves)
    grads = gradients(out)
    return out.data, [grads.get(v, 0.0) for v in leaves]


def assert_matches(c: mg.Compiled, f: Callable[..., Any], xs: list[float], max_ulps: float = 4) -> None:
    value, grads = c(*xs)
    ref_value, ref_grads = reference(f, xs)
    assert value == ref_value or (math.isnan(value) and math.isnan(ref_value)), (xs, value, ref_value)
    for g, r in zip(grads, ref_grads, strict=True):
        assert ulps(g, r) <= max_ulps, (xs, grads, ref_grads)


def smooth(x: Any, y: Any, z: Any) -> Any:
    a = x * y - z / (1 + y * y)
    b = (a * 0.5).tanh() + mg.sigmoid(z - x) * mg.exp(-y * y)
    c = mg.log(1 + x * x) * (b ** 3) - 2 ** (z * 0.1)
    return c + mg.softplus(a) * mg.sigmoid_fused(x) + (x - y) ** 2 + mg.leaky_relu(a - b)


def kinky(x: Any, y: Any) -> Any:
    h = [mg.relu(x * w + y * (1 - w)) for w in (-1.5, -0.5, 0.25, 1.0, 2.0)]
    return sum(hi * hi for hi in h) + mg.relu(x) * mg.relu(-y) + mg.relu(x - y)


@pytest.mark.parametrize("method", METHODS)
def test_smooth_function_matches_engine_on_random_inputs(method: str) -> None:
    rng = random.Random(1)
    c = mg.compile(smooth, 0.3, -0.7, 1.1, method=method)
    assert c.method == method
    for _ in range(300):
        assert_matches(c, smooth, [rng.uniform(-3, 3) for _ in range(3)])


@pytest.mark.parametrize("method", METHODS)
def test_relu_on_both_sides_of_zero(method: str) -> None:
    # traced with every relu active, then evaluated where they switch off
    c = mg.compile(kinky, 2.0, 1.0, method=method)
    rng = random.Random(2)
    points = [[rng.uniform(-2, 2), rng.uniform(-2, 2)] for _ in range(300)]
    points += [[0.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1e-300, -1e-300], [-0.0, 0.0]]
    for xs in points:
        assert_matches(c, kinky, xs, max_ulps=2)
    # the derivative of relu at a point where the traced graph had it "on"
    _, (gx, _) = mg.compile(lambda x, y: mg.relu(x), 1.0, 0.0, method=method)(-1.0, 0.0)
    assert gx == 0.0


def _sample(prim: Any, rng: random.Random, const: float) -> list[float] | None:
    xs = [rng.choice([rng.uniform(-4, 4), rng.uniform(0.01, 3), float(rng.randint(-3, 3))])
          for _ in range(prim.arity)]
    for i in prim.constant_args:
        xs[i] = const
    if prim.valid is not None and not prim.valid(*xs):
        return None
    return xs


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.arity >= 0))
def test_every_primitive_compiles_to_its_rule(name: str, method: str) -> None:
    prim = PRIMITIVES[name]
    rng = random.Random(name)
    for const in (2.0, 3.0, 0.5, -1.0):
        fixed = {i: const for i in prim.constant_args}
        variable = [i for i in range(prim.arity) if i not in fixed]

        def f(*vs: Any, fixed: dict[int, float] = fixed, variable: list[int] = variable) -> Any:
            args: list[Any] = [0.0] * prim.arity
            for i, v in zip(variable, vs, strict=True):
                args[i] = v
            for i, c in fixed.items():
                args[i] = c
            return apply(prim, *args)

        example = None
        while example is None:
            example = _sample(prim, rng, const)
        c = mg.compile(f, *[example[i] for i in variable], method=method)
        checked = 0
        for _ in range(200):
            xs = _sample(prim, rng, const)
            if xs is None:
                continue
            assert_matches(c, f, [xs[i] for i in variable], max_ulps=0)
            checked += 1
        assert checked > 50
        if not prim.constant_args:
            break


@pytest.mark.parametrize("name", sorted(n for n, p in PRIMITIVES.items() if p.arity >= 0))
def test_templates_agree_with_forward_and_derivatives(name: str) -> None:
    """The code the compiler writes for a primitive computes its table entry exactly."""
    prim = PRIMITIVES[name]
    rng = random.Random(name)
    consts = tuple(2.0 if i in prim.constant_args else None for i in range(prim.arity))
    fwd, _ = forward_template(prim, consts)
    drv = vjp_templates(prim, consts)
    ns = {f"_F_{n}": p.forward for n, p in PRIMITIVES.items()}
    ns.update(_NAN=math.nan, _INF=math.inf, _NINF=-math.inf)
    for _ in range(200):
        xs = [rng.uniform(-3, 3) for _ in range(prim.arity)]
        for i in prim.constant_args:
            xs[i] = 2.0
        if prim.valid is not None and not prim.valid(*xs):
            continue
        names = [f"a{i}" for i in range(prim.arity)]
        env = dict(ns, **dict(zip(names, xs, strict=True)))
        out = eval(fwd.format(*names), env)
        assert out == prim.forward(*xs)
        if drv is not None:
            env.update(out=out, g=-1.75)
            got = [eval(d.format(*names, out="out", g="g"), env) for d in drv]
            assert got == list(prim.vjp(-1.75, *xs, out))


@pytest.mark.parametrize("method", METHODS)
def test_domain_errors_are_raised_like_the_engine(method: str) -> None:
    c = mg.compile(lambda x: mg.log(x) + 1 / x, 2.0, method=method)
    for bad in (0.0, -1.0):
        with pytest.raises(mg.DomainError) as compiled_error:
            c(bad)
        with pytest.raises(mg.DomainError) as engine_error:
            reference(lambda x: mg.log(x) + 1 / x, [bad])
        assert type(compiled_error.value) is type(engine_error.value)
        assert str(compiled_error.value) == str(engine_error.value)


def test_constant_folding_and_source() -> None:
    k = Value(3.0, requires_grad=False)

    def f(x: Any) -> Any:
        return x * (k * 2 + 1) + (k * k).exp() * 0

    c = mg.compile(f, 1.0)
    # k*2+1 and exp(k*k) are computed once, while compiling
    assert "7.0" in c.source and "exp" not in c.source
    assert c(5.0) == (35.0, (7.0,))
    # one line per node that depends on the input, forward
    forward = c.source.split("# backward")[0].splitlines()[2:]
    assert len(forward) == 3  # x * 7.0, exp-term * 0 is folded, then the add
    assert isinstance(c.graph, Value) and type(c.graph) is Value
    assert all(type(v) is Value for v in mg.toposort(c.graph))


def test_identity_and_constant_functions() -> None:
    c = mg.compile(lambda x, y: x, 1.0, 2.0)
    assert c(4.0, 5.0) == (4.0, (1.0, 0.0))
    c = mg.compile(lambda x: 2.5, 1.0)
    assert c(4.0) == (2.5, (0.0,))


def test_argument_structure_and_argnums() -> None:
    def f(ws: list[Any], pair: tuple[Any, Any], s: Any) -> Any:
        return sum(w * w for w in ws) * pair[0] + pair[1] * s

    c = mg.compile(f, [1.0, 2.0, 3.0], (0.5, 1.5), 2.0)
    value, (gws, gpair, gs) = c([1.0, 1.0, 2.0], (2.0, 3.0), 4.0)
    assert value == 6.0 * 2.0 + 12.0
    assert gws == [4.0, 4.0, 8.0] and gpair == (6.0, 4.0) and gs == 3.0
    c1 = mg.compile(f, [1.0, 2.0, 3.0], (0.5, 1.5), 2.0, argnums=0)
    assert c1([1.0, 1.0, 2.0], (2.0, 3.0), 4.0) == (value, gws)
    # another length is another structure: traced again (tests/test_compile_cache.py)
    assert c([1.0, 2.0], (2.0, 3.0), 4.0) == (5.0 * 2.0 + 12.0, ([4.0, 8.0], (5.0, 4.0), 3.0))
    with pytest.raises(TypeError, match="argument"):  # f's own error, traced with two arguments
        c([1.0, 2.0, 3.0], (2.0, 3.0))
    with pytest.raises(TypeError, match="str"):
        mg.compile(f, [1.0], (0.5, "a"), 2.0)
    with pytest.raises(TypeError, match="dict"):
        c([1.0], (0.5, 1.0), {"s": 2.0})


def test_codegen_limit_falls_back_to_the_tape_or_says_so() -> None:
    def chain(x: Any) -> Any:
        for _ in range(100):
            x = x * 1.0001 + 0.0001
        return x

    c = mg.compile(chain, 1.0, codegen_limit=50)
    assert c.method == "tape" and c.source is None
    assert c(2.0) == mg.compile(chain, 1.0)(2.0)
    with pytest.raises(ValueError, match="codegen_limit"):
        mg.compile(chain, 1.0, method="codegen", codegen_limit=50)
    # fewer nodes than the limit, but more lines of code
    def squares(x: Any) -> Any:
        for _ in range(100):
            x = x * x * 0.999
        return x

    chain = squares
    full = mg.compile(chain, 1.0)
    lines = len(full.source.splitlines())
    assert full.num_nodes < lines
    assert mg.compile(chain, 1.0, codegen_limit=lines - 5).method == "tape"
    with pytest.raises(ValueError, match="lines"):
        mg.compile(chain, 1.0, method="codegen", codegen_limit=lines - 5)


def test_a_primitive_without_templates_or_symbolic_rules_is_called() -> None:
    """A new table entry compiles with no compiler change: its functions are called."""
    from microgrannd.ops import Primitive

    clip = Primitive(
        name="test_clip", arity=2, forward=lambda a, b: min(max(a, -b), b),
        derivatives=lambda a, b, out: (1.0 if -b < a < b else 0.0, 0.0 if -b < a < b else (1.0 if a > 0 else -1.0)),
        symbol="clip",
    )
    PRIMITIVES[clip.name] = clip
    try:
        def f(x: Any, y: Any) -> Any:
            return apply(clip, x * 3, y) * x

        for method in METHODS:
            c = mg.compile(f, 0.1, 1.0, method=method)
            if method == "codegen":
                assert "_F_test_clip(" in c.source and "_D_test_clip(" in c.source
            rng = random.Random(4)
            for _ in range(100):
                assert_matches(c, f, [rng.uniform(-2, 2), rng.uniform(0.1, 2)], max_ulps=0)
    finally:
        del PRIMITIVES[clip.name]


def test_generated_source_is_the_same_in_every_process() -> None:
    import subprocess
    import sys

    code = (
        "import microgrannd as mg\n"
        "f = lambda a, b, c: mg.sigmoid(a * b) * (a + c) + mg.tanh(b * c) * a\n"
        "print(mg.compile(f, 0.5, -1.0, 2.0).source)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    sources = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONPATH": root, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3", "4")
    }
    assert len(sources) == 1
