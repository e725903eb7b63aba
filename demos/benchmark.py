"""Speed and memory of microgrannd beside micrograd, PyTorch and a plain-float floor.

Run from a clone (micrograd comes with the ``benchmark`` extra; PyTorch is used
when it can be imported)::

    pip install -e ".[benchmark]"
    python demos/benchmark.py            # the full run (several minutes)
    python demos/benchmark.py --quick    # small sizes, a few seconds per engine
    python demos/benchmark.py --json results.json

Engines
    ``microgrannd``, ``micrograd`` (0.1.0), ``torch`` (0-dim float64 tensors)
    and ``floor``: the same arithmetic on plain floats with a hand-written
    backward, the lower bound for any scalar engine in pure Python.
    ``compiled`` and ``compiled-tape`` (``mlp_step`` only): the same loss
    traced once by ``microgrannd.compile`` (generated code / flat tape) and
    replayed on floats each step; the compilation is timed apart and reported
    with the number of steps that pay it back against uncompiled microgrannd.

Workloads
    ``mlp_step``   micrograd's demo step: MLP 2-16-16-1 on 100 two-moons points,
                   hinge loss + 1e-4 L2, forward, zero_grad, backward, SGD update;
                   each phase timed (build, zero_grad, backward, update, free).
    ``primitive``  per-op cost of add, mul, pow, relu (chains of 500 ops):
                   forward, and forward+backward including freeing the graph.
    ``wide``       sum of 100,000 products, summed pairwise, then backward.
    ``chain``      ``x = x*1.0001 + 0.0001`` N times then backward, N up to
                   1,000,000; reports the largest N each engine survives.
    ``memory``     bytes per op node of a 100,000-op chain (tracemalloc and
                   resident memory), constants included, each in a fresh process.

Each engine runs in a worker process of its own (so one engine's imports and
garbage do not slow another's collector down); the parent hands out the work
in turns.  Every engine runs the same model code (written below with Python operators,
so the arithmetic is identical), the engines are interleaved within each
repeat, and every result (loss, value, every gradient) is checked against the
floor's numbers before its time is reported: a wrong result is reported as
such, never timed.  ``mlp_step``, ``primitive`` and ``wide`` are measured with
the garbage collector on (the interpreter's default) and off; the library
itself never touches the collector.  Before each block of timed work the
collector runs once, untimed, so one engine's garbage is not charged to the
next; within a block an engine pays for its own garbage, as in a training loop.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(ROOT))

REL_TOL = 1e-9  # results must match the floor's to this relative tolerance
ABS_TOL = 1e-12
ENGINE_ORDER = ("microgrannd", "compiled", "compiled-tape", "micrograd", "torch", "floor")


class ResultMismatch(AssertionError):
    """An engine's result differs from the floor's: its time is not reported."""


def verify(engine: str, workload: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    """Raise :class:`ResultMismatch` unless every number in ``got`` matches ``want``.

    Both are dicts of floats or lists of floats with the same keys.
    """
    for key, expected in want.items():
        actual = got.get(key)
        exp_list = expected if isinstance(expected, list) else [expected]
        act_list = actual if isinstance(actual, list) else [actual]
        if len(exp_list) != len(act_list):
            raise ResultMismatch(
                f"{engine}/{workload}: {key} has {len(act_list)} numbers, expected {len(exp_list)}"
            )
        for i, (a, e) in enumerate(zip(act_list, exp_list, strict=False)):
            if not isinstance(a, float) or not math.isclose(a, e, rel_tol=REL_TOL, abs_tol=ABS_TOL):
                raise ResultMismatch(f"{engine}/{workload}: {key}[{i}] = {a!r}, the floor says {e!r}")


# --------------------------------------------------------------------------
# Engines: how to make a leaf, run backward and read numbers.  Everything else
# (the model, the loss, the chains) is shared code written with operators.


class Engine:
    """A graph-building engine seen through the few calls the workloads need."""

    name = "?"

    def leaf(self, x: float) -> Any:
        """A node that receives a gradient (a parameter)."""
        raise NotImplementedError

    def input(self, x: float) -> Any:
        """A data point's coordinate (micrograd's demo wraps them as Values too)."""
        return self.leaf(x)

    def backward(self, root: Any) -> None:
        """Run backward from ``root`` (seed 1)."""
        root.backward()

    def value(self, v: Any) -> float:
        """The float held by ``v``."""
        return float(v.data)

    def grad(self, v: Any) -> float:
        """The gradient accumulated on ``v``."""
        return float(v.grad)

    def set_value(self, p: Any, x: float) -> None:
        """Overwrite a parameter's value (used to reset the model, untimed)."""
        p.data = x

    def zero_grad(self, params: Sequence[Any]) -> None:
        """Clear the parameters' gradients."""
        for p in params:
            p.grad = 0.0

    def sgd(self, params: Sequence[Any], lr: float) -> None:
        """``p -= lr * p.grad`` for every parameter."""
        for p in params:
            p.data -= lr * p.grad


class MicrogranndEngine(Engine):
    """microgrannd.Value."""

    name = "microgrannd"

    def __init__(self) -> None:
        from microgrannd import Value

        self.Value = Value

    def leaf(self, x: float) -> Any:
        """A leaf Value."""
        return self.Value(x)


class MicrogradEngine(Engine):
    """micrograd 0.1.0's Value."""

    name = "micrograd"

    def __init__(self) -> None:
        from micrograd.engine import Value

        self.Value = Value

    def leaf(self, x: float) -> Any:
        """A leaf Value."""
        return self.Value(x)

    def zero_grad(self, params: Sequence[Any]) -> None:
        """micrograd's Module.zero_grad."""
        for p in params:
            p.grad = 0


class TorchEngine(Engine):
    """PyTorch 0-dim float64 tensors (single-threaded: the ops are scalars)."""

    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        torch.set_num_threads(1)

    def leaf(self, x: float) -> Any:
        """A leaf tensor with requires_grad."""
        return self.torch.tensor(x, dtype=self.torch.float64, requires_grad=True)

    def input(self, x: float) -> Any:
        """A constant tensor (PyTorch users do not track inputs)."""
        return self.torch.tensor(x, dtype=self.torch.float64)

    def value(self, v: Any) -> float:
        """``v.item()``."""
        return float(v.item())

    def grad(self, v: Any) -> float:
        """``v.grad.item()`` (0.0 if no gradient reached ``v``)."""
        return 0.0 if v.grad is None else float(v.grad.item())

    def set_value(self, p: Any, x: float) -> None:
        """Overwrite in place, outside the graph."""
        with self.torch.no_grad():
            p.fill_(x)

    def zero_grad(self, params: Sequence[Any]) -> None:
        """``p.grad = None`` (what ``optimizer.zero_grad()`` does by default)."""
        for p in params:
            p.grad = None

    def sgd(self, params: Sequence[Any], lr: float) -> None:
        """In-place update without recording."""
        with self.torch.no_grad():
            for p in params:
                p.sub_(lr * p.grad)


ENGINE_FACTORIES: dict[str, Callable[[], Engine]] = {
    "microgrannd": MicrogranndEngine,
    "micrograd": MicrogradEngine,
    "torch": TorchEngine,
}


def available_engines(wanted: Sequence[str]) -> tuple[dict[str, Engine], dict[str, str]]:
    """Instantiate the wanted graph engines; return (engines, {name: why missing})."""
    engines: dict[str, Engine] = {}
    missing: dict[str, str] = {}
    for name in wanted:
        if name == "floor":
            continue
        try:
            engines[name] = ENGINE_FACTORIES[name]()
        except ImportError as e:
            missing[name] = f"not importable ({e})"
    return engines, missing


# --------------------------------------------------------------------------
# Timing helpers


CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns, "cpu": time.process_time_ns}
_clock = CLOCKS["wall"]


def set_clock(name: str) -> None:
    """Time with wall-clock time (the default) or this process's CPU time.

    CPU time is steadier on a machine busy with other work; it still counts
    the garbage collector, which runs in the same thread.
    """
    global _clock
    _clock = CLOCKS[name]


def now() -> int:
    """The chosen clock, in nanoseconds."""
    return _clock()


@contextmanager
def gc_mode(mode: str) -> Iterator[None]:
    """Run the block with the collector on (``"on"``) or off, restoring it after."""
    was = gc.isenabled()
    if mode == "off":
        gc.disable()
    else:
        gc.enable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


@dataclass
class Row:
    """One engine on one workload variant: samples in seconds, or why none."""

    workload: str
    variant: str
    engine: str
    samples: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def median(self) -> float | None:
        """Median of the samples (None if the engine failed or was skipped)."""
        return statistics.median(self.samples) if self.samples and not self.error else None

    @property
    def min(self) -> float | None:
        """Fastest sample (None if the engine failed or was skipped)."""
        return min(self.samples) if self.samples and not self.error else None

    def add(self, total: float, phases: dict[str, float] | None = None) -> None:
        """Record one sample (and its phases)."""
        self.samples.append(total)
        for k, v in (phases or {}).items():
            self.phases.setdefault(k, []).append(v)


class Results:
    """All rows of a run, addressed by (workload, variant, engine)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], Row] = {}

    def row(self, workload: str, variant: str, engine: str) -> Row:
        """The row for this key, created on first use."""
        key = (workload, variant, engine)
        if key not in self.rows:
            self.rows[key] = Row(workload, variant, engine)
        return self.rows[key]

    def get(self, workload: str, variant: str, engine: str) -> Row | None:
        """The row if it exists."""
        return self.rows.get((workload, variant, engine))


def run_checked(
    row: Row, want: dict[str, Any], fn: Callable[[], tuple[float, dict[str, float], dict[str, Any]]]
) -> None:
    """Run one timed sample, verify it against the floor, and record it.

    ``fn`` returns (total seconds, phases, result numbers).  A mismatch or an
    exception marks the row with the error and drops its samples.
    """
    if row.error:
        return
    try:
        total, phases, got = fn()
        verify(row.engine, row.workload, got, want)
    except ResultMismatch as e:
        row.error = f"WRONG RESULT: {e}"
        row.samples.clear()
        row.phases.clear()
        return
    except RecursionError:
        row.error = "RecursionError"
        row.samples.clear()
        row.phases.clear()
        return
    row.add(total, phases)


# --------------------------------------------------------------------------
# mlp_step: micrograd's demo network and loss, one training step


def two_moons(n: int = 100, noise: float = 0.1, seed: int = 1337) -> tuple[list[list[float]], list[float]]:
    """Two interleaving half circles (as sklearn's make_moons), labels -1 / +1."""
    rng = random.Random(seed)
    n_out = n // 2
    n_in = n - n_out
    xs: list[list[float]] = []
    ys: list[float] = []
    for i in range(n_out):
        t = math.pi * i / (n_out - 1)
        xs.append([math.cos(t) + rng.gauss(0, noise), math.sin(t) + rng.gauss(0, noise)])
        ys.append(-1.0)
    for i in range(n_in):
        t = math.pi * i / (n_in - 1)
        xs.append([1 - math.cos(t) + rng.gauss(0, noise), 1 - math.sin(t) - 0.5 + rng.gauss(0, noise)])
        ys.append(1.0)
    return xs, ys


MLP_SIZES = (2, 16, 16, 1)
ALPHA = 1e-4
LR = 1.0  # micrograd's demo: 1.0 - 0.9 * k / 100 at step k = 0

Layers = list[list[tuple[list[Any], Any]]]  # layer -> neuron -> (weights, bias)


def init_params(seed: int = 0) -> list[list[tuple[list[float], float]]]:
    """micrograd's initialisation: weights uniform in [-1, 1], biases 0."""
    rng = random.Random(seed)
    layers = []
    for nin, nout in itertools.pairwise(MLP_SIZES):
        layers.append([([rng.uniform(-1, 1) for _ in range(nin)], 0.0) for _ in range(nout)])
    return layers


def flat(layers: Sequence[Sequence[tuple[Sequence[Any], Any]]]) -> list[Any]:
    """Parameters in micrograd's order: per neuron its weights then its bias."""
    return [p for layer in layers for w, b in layer for p in [*w, b]]


def mlp(layers: Layers, x: list[Any]) -> Any:
    """micrograd's MLP forward: ``sum(w*x, b)`` per neuron, relu except at the end."""
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        out = []
        for w, b in layer:
            act = sum((wi * xi for wi, xi in zip(w, x, strict=False)), b)
            out.append(act.relu() if i != last else act)
        x = out
    return x[0]


def mlp_loss(layers: Layers, inputs: list[list[Any]], ys: list[float]) -> Any:
    """micrograd's demo loss: mean hinge loss + 1e-4 * sum of squared parameters."""
    scores = [mlp(layers, x) for x in inputs]
    losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores, strict=False)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum(p * p for p in flat(layers))
    return data_loss + reg_loss


StepOut = tuple[float, dict[str, float], dict[str, Any]]


class MlpRunner:
    """One way of running the mlp_step workload.

    A runner is set up once with the data and initial parameters; ``step``
    resets the parameters (untimed), runs one timed training step and returns
    (total seconds, {phase: seconds}, {"loss", "grads", "params"}).  A
    compiled engine joins the benchmark by subclassing this and being listed
    in :func:`mlp_runners`.
    """

    name = "?"

    def setup(
        self, init: list[list[tuple[list[float], float]]], xs: list[list[float]], ys: list[float]
    ) -> None:
        """Keep the data and the initial parameters."""
        raise NotImplementedError

    def step(self) -> StepOut:
        """One timed step from the initial parameters."""
        raise NotImplementedError

    def extra(self) -> dict[str, Any]:
        """Numbers for the row beside its times (a compiled runner's compile time)."""
        return {}


class GraphMlp(MlpRunner):
    """mlp_step on a graph-building engine, with the shared model code."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name

    def setup(
        self, init: list[list[tuple[list[float], float]]], xs: list[list[float]], ys: list[float]
    ) -> None:
        """Make the engine's parameter leaves."""
        e = self.engine
        self.layers: Layers = [[([e.leaf(w) for w in ws], e.leaf(b)) for ws, b in layer] for layer in init]
        self.params = flat(self.layers)
        self.init = flat(init)
        self.xs, self.ys = xs, ys

    def step(self) -> StepOut:
        """build, zero_grad, backward, update, free; each phase timed."""
        e, params = self.engine, self.params
        for p, x in zip(params, self.init, strict=False):
            e.set_value(p, x)
        t0 = now()
        inputs = [[e.input(c) for c in row] for row in self.xs]
        loss = mlp_loss(self.layers, inputs, self.ys)
        t1 = now()
        e.zero_grad(params)
        t2 = now()
        e.backward(loss)
        t3 = now()
        e.sgd(params, LR)
        t4 = now()
        loss_value = e.value(loss)
        t5 = now()
        del loss, inputs  # drop the graph
        t6 = now()
        ns = {"build": t1 - t0, "zero_grad": t2 - t1, "backward": t3 - t2, "update": t4 - t3, "free": t6 - t5}
        phases = {k: v / 1e9 for k, v in ns.items()}
        got = {
            "loss": loss_value,
            "grads": [e.grad(p) for p in params],
            "params": [e.value(p) for p in params],
        }
        return sum(phases.values()), phases, got


def relu_f(x: float) -> float:
    """ReLU on a float, with the engines' convention (0 at 0)."""
    return x if x > 0 else 0.0


class FloorMlp(MlpRunner):
    """The same step on plain floats: forward keeps activations, backward by hand."""

    name = "floor"

    def __init__(self, dense: bool = False) -> None:
        # dense: compute every product of the backward, as a graph does, instead
        # of skipping neurons whose gradient is zero as a hand-written backward would
        self.dense = dense
        if dense:
            self.name = "floor-dense"

    def setup(
        self, init: list[list[tuple[list[float], float]]], xs: list[list[float]], ys: list[float]
    ) -> None:
        """Keep the data and the initial parameters."""
        self.init = init
        self.xs, self.ys = xs, ys

    def step(self) -> StepOut:
        """forward, backward, update on floats (build = forward)."""
        t0 = now()
        ws = [[list(w) for w, _ in layer] for layer in self.init]
        bs = [[b for _, b in layer] for layer in self.init]
        n, last = len(self.xs), len(ws) - 1
        # forward, keeping each layer's inputs and pre-activations
        acts_in: list[list[list[float]]] = []  # per sample, per layer: the layer's input
        pre: list[list[list[float]]] = []  # per sample, per layer: pre-activations
        scores = []
        for x in self.xs:
            ins, zs = [], []
            h = x
            for li, (wl, bl) in enumerate(zip(ws, bs, strict=False)):
                z = []
                for w, b in zip(wl, bl, strict=False):
                    a = b
                    for wi, hi in zip(w, h, strict=False):
                        a = a + wi * hi
                    z.append(a)
                ins.append(h)
                zs.append(z)
                h = [relu_f(v) for v in z] if li != last else z
            acts_in.append(ins)
            pre.append(zs)
            scores.append(h[0])
        margins = [1 + -y * s for y, s in zip(self.ys, scores, strict=False)]
        data_loss = sum(relu_f(m) for m in margins) * (1.0 / n)
        flat_p = [
            p for wl, bl in zip(ws, bs, strict=False) for w, b in zip(wl, bl, strict=False) for p in [*w, b]
        ]
        loss = data_loss + ALPHA * sum(p * p for p in flat_p)
        t1 = now()
        # backward
        gws = [[[0.0] * len(w) for w in wl] for wl in ws]
        gbs = [[0.0] * len(bl) for bl in bs]
        for s in range(n):
            g_score = (-self.ys[s] * (1.0 / n)) if margins[s] > 0 else 0.0
            gout = [g_score]
            for li in range(last, -1, -1):
                z, h = pre[s][li], acts_in[s][li]
                if li != last:
                    gout = [g if zi > 0 else 0.0 for g, zi in zip(gout, z, strict=False)]
                gin = [0.0] * len(h)
                for j, g in enumerate(gout):
                    if g == 0.0 and not self.dense:
                        continue
                    w, gw = ws[li][j], gws[li][j]
                    gbs[li][j] += g
                    for k, hk in enumerate(h):
                        gw[k] += g * hk
                        gin[k] += g * w[k]
                gout = gin
        for wl, bl, gwl, gbl in zip(ws, bs, gws, gbs, strict=False):
            for j, w in enumerate(wl):
                for k, wk in enumerate(w):
                    gwl[j][k] += 2 * ALPHA * wk
                gbl[j] += 2 * ALPHA * bl[j]
        t2 = now()
        grads = [
            g
            for gwl, gbl in zip(gws, gbs, strict=False)
            for gw, gb in zip(gwl, gbl, strict=False)
            for g in [*gw, gb]
        ]
        new = [p - LR * g for p, g in zip(flat_p, grads, strict=False)]
        t3 = now()
        ns = {"build": t1 - t0, "zero_grad": 0, "backward": t2 - t1, "update": t3 - t2, "free": 0}
        phases = {k: v / 1e9 for k, v in ns.items()}
        return sum(phases.values()), phases, {"loss": loss, "grads": grads, "params": new}


def compile_mlp_loss(layers: Layers, xs: list[list[float]], ys: list[float], method: str = "auto") -> Any:
    """``microgrannd.compile`` of the shared loss over ``layers``' parameters (captured).

    The data are the compiled function's arguments (no gradients taken for
    them), so it runs on any batch of the same size; ``backward(xs, ys)`` adds
    the parameters' gradients to their ``grad`` and returns the loss.
    """
    from microgrannd import compile

    return compile(partial(mlp_loss, layers), xs, ys, argnums=(), method=method)


class CompiledMlp(MlpRunner):
    """mlp_step compiled: the shared loss traced once, then replayed on floats each step.

    The compilation happens once per runner (the benchmark keeps the runner
    for the life of its worker process), untimed in the step and reported by
    :meth:`extra`.  It is traced at other parameters and data than the ones
    it runs on, so a compiled function that froze the traced numbers fails
    the check against the floor.
    """

    name = "compiled"
    method = "codegen"

    def __init__(self) -> None:
        self.engine = MicrogranndEngine()
        self.compiled: Any = None
        self.key: Any = None

    def setup(
        self, init: list[list[tuple[list[float], float]]], xs: list[list[float]], ys: list[float]
    ) -> None:
        """Compile once for this data and model shape (again only if they change)."""
        key = (init, xs, ys)
        if key == self.key:
            return
        e = self.engine
        self.layers: Layers = [[([e.leaf(w) for w in ws], e.leaf(b)) for ws, b in layer] for layer in init]
        self.params = flat(self.layers)
        self.init = flat(init)
        self.xs, self.ys = xs, ys
        rng = random.Random(1)
        for p in self.params:  # trace elsewhere: the step must read the current numbers
            e.set_value(p, rng.uniform(-1, 1))
        self.trace_xs = [[c + rng.uniform(-0.5, 0.5) for c in row] for row in xs]
        self.trace_ys = [-y for y in ys]
        self.compiled = None
        gc.collect()
        t0 = now()
        self.compiled = compile_mlp_loss(self.layers, self.trace_xs, self.trace_ys, self.method)
        self.compile_seconds = (now() - t0) / 1e9
        self.key = key

    def run(self) -> float:
        """The compiled forward and backward on the benchmark's data; returns the loss."""
        return float(self.compiled.backward(self.xs, self.ys))

    def step(self) -> StepOut:
        """zero_grad, compiled forward+backward, update; each phase timed."""
        e, params = self.engine, self.params
        for p, x in zip(params, self.init, strict=False):
            e.set_value(p, x)
        t0 = now()
        e.zero_grad(params)
        t1 = now()
        loss = self.run()
        t2 = now()
        e.sgd(params, LR)
        t3 = now()
        ns = {"zero_grad": t1 - t0, "fwd+bwd": t2 - t1, "update": t3 - t2}
        phases = {k: v / 1e9 for k, v in ns.items()}
        got = {"loss": loss, "grads": [e.grad(p) for p in params], "params": [e.value(p) for p in params]}
        return sum(phases.values()), phases, got

    def extra(self) -> dict[str, Any]:
        """The compilation: seconds (tracing + code generation), method, nodes."""
        c = self.compiled
        return {
            "compile_seconds": self.compile_seconds,
            "trace_seconds": c.trace_seconds,
            "method": c.method,
            "nodes": c.num_nodes,
        }


class CompiledTapeMlp(CompiledMlp):
    """mlp_step compiled to a flat tape run by a tight loop."""

    name = "compiled-tape"
    method = "tape"


def mlp_runners(engines: dict[str, Engine], with_floor: bool) -> list[MlpRunner]:
    """The runners of mlp_step: one per graph engine, then the floor.

    Runners of mlp_step only (the compiled ones) are listed in
    :data:`MLP_ONLY_RUNNERS` and run in worker processes of their own.
    """
    runners: list[MlpRunner] = [GraphMlp(e) for e in engines.values()]
    if with_floor:
        runners.append(FloorMlp())
    return runners


def bench_mlp(
    results: Results, runners: list[MlpRunner], modes: Sequence[str], blocks: int, steps: int, points: int = 100
) -> None:
    """Interleave the runners: per block, one warm step then ``steps`` timed ones.

    ``points``: the two-moons batch size (100 in micrograd's demo; smaller in tests).
    """
    xs, ys = two_moons(points)
    init = init_params()
    floor = FloorMlp()
    floor.setup(init, xs, ys)
    want = floor.step()[2]
    for r in runners:
        r.setup(init, xs, ys)
    for mode in modes:
        with gc_mode(mode):
            for _ in range(blocks):
                for r in runners:
                    row = results.row("mlp_step", f"gc {mode}", r.name)
                    gc.collect()
                    run_checked(row, want, r.step)  # warm step: checked, then dropped below
                    if row.samples:
                        row.samples.pop()
                        for v in row.phases.values():
                            v.pop()
                    for _ in range(steps):
                        run_checked(row, want, r.step)
                    if not row.error:
                        row.extra.update(r.extra())
                gc.collect()


# --------------------------------------------------------------------------
# primitive: per-op cost on chains of one primitive


PRIMITIVE_LEN = 500  # short enough for micrograd's recursive toposort


def prim_chain(kind: str, x: Any, c: Any, length: int) -> Any:
    """Apply one primitive ``length`` times: x+c, x*c, (x**2)**0.5, relu(x)."""
    if kind == "add":
        for _ in range(length):
            x = x + c
    elif kind == "mul":
        for _ in range(length):
            x = x * c
    elif kind == "pow":
        for _ in range(length // 2):
            x = (x**2.0) ** 0.5
    elif kind == "relu":
        for _ in range(length):
            x = x.relu()
    else:
        raise ValueError(kind)
    return x


def floor_prim(kind: str, length: int, reps: int) -> StepOut:
    """The same chains on floats with a hand-written backward."""
    x0, c0 = 1.3, 1.0001 if kind == "mul" else 0.001
    t_fwd = t_all = 0
    out = gx = gc_ = 0.0
    for _ in range(reps):
        t0 = now()
        tape = []
        x = x0
        if kind == "add":
            for _ in range(length):
                x = x + c0
        elif kind == "mul":
            for _ in range(length):
                tape.append(x)
                x = x * c0
        elif kind == "pow":
            for _ in range(length // 2):
                tape.append(x)
                y = x**2.0
                tape.append(y)
                x = y**0.5
        else:
            for _ in range(length):
                tape.append(x)
                x = relu_f(x)
        t1 = now()
        g, gc_ = 1.0, 0.0
        if kind == "add":
            gc_ = float(length)
        elif kind == "mul":
            for xi in reversed(tape):
                gc_ += g * xi
                g *= c0
        elif kind == "pow":
            for i in range(len(tape) - 1, 0, -2):
                g *= 0.5 * tape[i] ** -0.5
                g *= 2.0 * tape[i - 1]
        else:
            for xi in reversed(tape):
                g = g if xi > 0 else 0.0
        out, gx = x, g
        t2 = now()
        t_fwd += t1 - t0
        t_all += t2 - t0
    got: dict[str, Any] = {"out": out, "dx": gx}
    if kind in ("add", "mul"):
        got["dc"] = gc_
    return t_all / 1e9, {"forward": t_fwd / 1e9}, got


def graph_prim(engine: Engine, kind: str, length: int, reps: int) -> StepOut:
    """Build, backward and drop ``reps`` chains; time each part (the total includes freeing)."""
    x0, c0 = 1.3, 1.0001 if kind == "mul" else 0.001
    t_fwd = t_bwd = t_free = 0
    got: dict[str, Any] = {}
    for _ in range(reps):
        x, c = engine.leaf(x0), engine.leaf(c0)
        t0 = now()
        y = prim_chain(kind, x, c, length)
        t1 = now()
        engine.backward(y)
        t2 = now()
        out = engine.value(y)
        t3 = now()
        del y
        t4 = now()
        t_fwd += t1 - t0
        t_bwd += t2 - t1
        t_free += t4 - t3
        got = {"out": out, "dx": engine.grad(x)}
        if kind in ("add", "mul"):
            got["dc"] = engine.grad(c)
    phases = {"forward": t_fwd / 1e9, "backward": t_bwd / 1e9, "free": t_free / 1e9}
    return sum(phases.values()), phases, got


def bench_primitives(
    results: Results,
    engines: dict[str, Engine],
    with_floor: bool,
    modes: Sequence[str],
    repeats: int,
    reps: int,
    kinds: Sequence[str] = ("add", "mul", "pow", "relu"),
) -> None:
    """Per-op forward and forward+backward cost; seconds are per op."""
    ops = PRIMITIVE_LEN * reps
    for kind in kinds:
        want = floor_prim(kind, PRIMITIVE_LEN, 1)[2]
        for mode in modes:
            with gc_mode(mode):
                for _ in range(repeats):
                    for name, e in engines.items():
                        gc.collect()
                        row = results.row(f"primitive {kind}", f"gc {mode}", name)
                        run_checked(
                            row, want, partial(per_op, partial(graph_prim, e, kind, PRIMITIVE_LEN, reps), ops)
                        )
                    if with_floor:
                        gc.collect()
                        row = results.row(f"primitive {kind}", f"gc {mode}", "floor")
                        run_checked(
                            row, want, partial(per_op, partial(floor_prim, kind, PRIMITIVE_LEN, reps), ops)
                        )
                gc.collect()


def per_op(sample: Callable[[], StepOut], ops: int) -> StepOut:
    """Take a sample and divide its times by the number of ops."""
    total, phases, got = sample()
    return total / ops, {k: v / ops for k, v in phases.items()}, got


# --------------------------------------------------------------------------
# wide: sum of many products, pairwise


def pairwise_sum(xs: list[Any]) -> Any:
    """Sum by halving: depth log2(n), so recursive toposorts survive."""
    while len(xs) > 1:
        nxt = [xs[i] + xs[i + 1] for i in range(0, len(xs) - 1, 2)]
        if len(xs) % 2:
            nxt.append(xs[-1])
        xs = nxt
    return xs[0]


def wide_data(n: int) -> tuple[list[float], list[float]]:
    """Deterministic factors for the wide workload."""
    rng = random.Random(7)
    return [rng.uniform(-1, 1) for _ in range(n)], [rng.uniform(-1, 1) for _ in range(n)]


def floor_wide(n: int) -> StepOut:
    """Products and pairwise sum on floats; d sum / d a_i = b_i."""
    a, b = wide_data(n)
    t0 = now()
    s = pairwise_sum([x * y for x, y in zip(a, b, strict=False)])
    ga, gb = list(b), list(a)
    t1 = now()
    return (t1 - t0) / 1e9, {}, {"sum": s, "grad_a": ga[:: max(1, n // 50)], "grad_b": gb[:: max(1, n // 50)]}


def graph_wide(engine: Engine, n: int) -> StepOut:
    """Build the products and the sum tree, backward, drop the graph."""
    a, b = wide_data(n)
    la, lb = [engine.leaf(x) for x in a], [engine.leaf(x) for x in b]
    t0 = now()
    s = pairwise_sum([x * y for x, y in zip(la, lb, strict=False)])
    t1 = now()
    engine.backward(s)
    t2 = now()
    value = engine.value(s)
    t3 = now()
    s = None
    t4 = now()
    k = max(1, n // 50)
    got = {
        "sum": value,
        "grad_a": [engine.grad(x) for x in la[::k]],
        "grad_b": [engine.grad(x) for x in lb[::k]],
    }
    phases = {"build": (t1 - t0) / 1e9, "backward": (t2 - t1) / 1e9, "free": (t4 - t3) / 1e9}
    return sum(phases.values()), phases, got


def bench_wide(
    results: Results, engines: dict[str, Engine], with_floor: bool, modes: Sequence[str], repeats: int, n: int
) -> None:
    """Interleaved repeats of the wide workload."""
    want = floor_wide(n)[2]
    for mode in modes:
        with gc_mode(mode):
            for _ in range(repeats):
                for name, e in engines.items():
                    gc.collect()
                    run_checked(results.row("wide", f"gc {mode}", name), want, partial(graph_wide, e, n))
                if with_floor:
                    gc.collect()
                    run_checked(results.row("wide", f"gc {mode}", "floor"), want, partial(floor_wide, n))
            gc.collect()


# --------------------------------------------------------------------------
# chain: x = x*1.0001 + 0.0001, as deep as each engine goes


def floor_chain(n: int) -> StepOut:
    """The chain on floats; d x_n / d x_0 = 1.0001 ** n, accumulated backwards."""
    t0 = now()
    x = 0.5
    for _ in range(n):
        x = x * 1.0001 + 0.0001
    t1 = now()
    g = 1.0
    for _ in range(n):
        g *= 1.0001
    t2 = now()
    phases = {"build": (t1 - t0) / 1e9, "backward": (t2 - t1) / 1e9, "free": 0.0}
    return sum(phases.values()), phases, {"x": x, "dx0": g}


def graph_chain(engine: Engine, n: int) -> StepOut:
    """Build the chain, backward, drop it."""
    x0 = engine.leaf(0.5)
    t0 = now()
    x = x0
    for _ in range(n):
        x = x * 1.0001 + 0.0001
    t1 = now()
    engine.backward(x)
    t2 = now()
    value = engine.value(x)
    t3 = now()
    x = None
    t4 = now()
    phases = {"build": (t1 - t0) / 1e9, "backward": (t2 - t1) / 1e9, "free": (t4 - t3) / 1e9}
    return sum(phases.values()), phases, {"x": value, "dx0": engine.grad(x0)}


def chain_variant(n: int, mode: str) -> str:
    """The row variant of a chain of ``n`` steps: ``"N=1,000 gc on"``."""
    return f"N={n:,} gc {mode}"


def chain_size(variant: str) -> int:
    """``n`` back from :func:`chain_variant`."""
    return int(variant.split()[0][2:].replace(",", ""))


def chain_in_child(
    engine: str, n: int, timeout: float, clock: str = "wall", mode: str = "on"
) -> dict[str, Any]:
    """Run one chain in a fresh interpreter; a crash there cannot take us down."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        f"chain:{mode}",
        engine,
        str(n),
        "--clock",
        clock,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {"error": f"crashed: {tail[:120]}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def child_chain(engine_name: str, n: int, mode: str = "on") -> dict[str, Any]:
    """The child's side of :func:`chain_in_child`: one checked run as JSON."""
    if mode == "off":
        gc.disable()
    want = floor_chain(n)[2]
    if engine_name == "floor":
        out = floor_chain(n)
    else:
        engines, missing = available_engines([engine_name])
        if missing:
            return {"error": missing[engine_name]}
        try:
            out = graph_chain(engines[engine_name], n)
        except RecursionError:
            return {"error": "RecursionError"}
    try:
        verify(engine_name, "chain", out[2], want)
    except ResultMismatch as e:
        return {"error": f"WRONG RESULT: {e}"}
    return {"total": out[0], "phases": out[1]}


SUBPROCESS_FROM = 100_000  # chains at least this long run in a child process


def bench_chain(
    results: Results,
    names: Sequence[str],
    sample: Callable[[str, int, str], None],
    sizes: Sequence[int],
    repeats: int,
    budget: float,
    clock: str = "wall",
    modes: Sequence[str] = ("on",),
) -> None:
    """Each N in turn, engines interleaved; an engine stops at its first failure.

    ``sample(name, n, mode)`` adds one checked sample to the row of a short chain.
    Sizes of at least SUBPROCESS_FROM ops run once in a fresh child process,
    unless the engine's last time per op predicts more than ``budget`` seconds.
    """
    for mode in modes:
        failed: dict[str, str] = {}
        per_op_time: dict[str, float] = {}
        for n in sizes:
            for _rep in range(repeats if n < SUBPROCESS_FROM else 1):
                for name in names:
                    row = results.row("chain", chain_variant(n, mode), name)
                    if name in failed:
                        row.error = row.error or f"skipped (failed at a smaller N: {failed[name]})"
                        continue
                    predicted = per_op_time.get(name, 0.0) * n
                    if predicted > budget:
                        row.error = f"skipped (predicted {predicted:.0f} s > budget {budget:.0f} s)"
                        continue
                    if n >= SUBPROCESS_FROM:
                        timeout = max(60.0, 4 * predicted)
                        out = chain_in_child(name, n, timeout=timeout, clock=clock, mode=mode)
                        if "error" in out:
                            row.error = out["error"]
                        else:
                            row.add(out["total"], out["phases"])
                    else:
                        sample(name, n, mode)
                    if row.error:
                        failed[name] = row.error
                    elif row.samples:
                        per_op_time[name] = min(row.samples) / n


# --------------------------------------------------------------------------
# memory: bytes per op node, each engine in a fresh interpreter


MEMORY_STEPS = 50_000  # 2 op nodes per step: 100,000 op nodes


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; else peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child_memory(engine_name: str, steps: int) -> dict[str, Any]:
    """Bytes per op node after building a chain, and the peak during backward."""
    engines, missing = available_engines([engine_name])
    if missing:
        return {"error": missing[engine_name]}
    e = engines[engine_name]
    ops = 2 * steps
    out: dict[str, Any] = {}
    gc.collect()
    # resident memory first, without tracemalloc's own overhead
    x0 = e.leaf(0.5)
    before = rss_bytes()
    x = x0
    for _ in range(steps):
        x = x * 1.0001 + 0.0001
    out["rss_per_node"] = (rss_bytes() - before) / ops
    x = None
    gc.collect()
    tracemalloc.start()
    x0 = e.leaf(0.5)
    base = tracemalloc.get_traced_memory()[0]
    x = x0
    for _ in range(steps):
        x = x * 1.0001 + 0.0001
    graph = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.reset_peak()
    try:
        e.backward(x)
        peak = tracemalloc.get_traced_memory()[1] - base
        out["traced_backward_peak_per_node"] = peak / ops
    except RecursionError:
        out["traced_backward_peak_per_node"] = None
    tracemalloc.stop()
    out["traced_per_node"] = graph / ops
    if engine_name == "torch":
        out["note"] = "tracemalloc does not see PyTorch's C++ allocations"
    return out


def bench_memory(results: Results, names: Sequence[str], steps: int) -> None:
    """One child process per engine."""
    for name in names:
        row = results.row("memory", f"{2 * steps:,}-op chain", name)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "memory", name, str(steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            row.error = f"crashed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:120]}"
            continue
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        if "error" in out:
            row.error = out["error"]
        else:
            row.extra = out


# --------------------------------------------------------------------------
# Report


def fmt_time(s: float | None) -> str:
    """Seconds in a readable unit."""
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e9:.0f} ns"


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as text."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3g}"


def compiled_summary(results: Results, variant: str, engine: str) -> dict[str, Any] | None:
    """A compiled mlp_step row's ratios, compile time and amortisation (None if it has no time).

    ``amortised_after_steps``: how many steps the compilation takes to pay
    back against uncompiled microgrannd's fastest step of the same variant (a
    conservative count: the median saves more); None if it never does.
    """
    row = results.get("mlp_step", variant, engine)
    if row is None or row.median is None or "compile_seconds" not in row.extra:
        return None
    mg, fl, plain = (results.get("mlp_step", variant, n) for n in ("micrograd", "floor", "microgrannd"))
    out: dict[str, Any] = {
        "median": row.median,
        "per_floor": row.median / fl.median if fl and fl.median else None,
        "micrograd_per": mg.median / row.median if mg and mg.median else None,
        "compile_seconds": row.extra["compile_seconds"],
        "nodes": row.extra.get("nodes"),
        "amortised_after_steps": None,
    }
    if plain is not None and plain.min is not None and plain.min > row.median:
        out["amortised_after_steps"] = math.ceil(out["compile_seconds"] / (plain.min - row.median))
    return out


def table(results: Results) -> str:
    """The timing rows, then memory, as fixed-width text."""
    lines = []
    head = (
        f"{'workload':<18}{'variant':<20}{'engine':<13}{'median':>11}{'min':>11}"
        f"{'/micrograd':>11}{'/floor':>9}  notes"
    )
    lines.append(head)
    lines.append("-" * len(head))
    order = {name: i for i, name in enumerate(ENGINE_ORDER)}
    keys = sorted(
        (k for k in results.rows if k[0] != "memory"),
        key=lambda k: (
            list(results.rows).index(next(kk for kk in results.rows if kk[:2] == k[:2])),
            order.get(k[2], 99),
        ),
    )
    for key in keys:
        row = results.rows[key]
        mg = results.get(row.workload, row.variant, "micrograd")
        fl = results.get(row.workload, row.variant, "floor")
        notes = row.error
        if not notes and row.phases:
            notes = " ".join(f"{k} {fmt_time(statistics.median(v))}" for k, v in row.phases.items())
        summary = compiled_summary(results, row.variant, row.engine) if not row.error else None
        if summary is not None:
            steps = summary["amortised_after_steps"]
            notes += (
                f"; compile {fmt_time(summary['compile_seconds'])}, paid back after "
                f"{'never' if steps is None else steps} steps"
            )
        lines.append(
            f"{row.workload:<18}{row.variant:<20}{row.engine:<13}{fmt_time(row.median):>11}{fmt_time(row.min):>11}"
            f"{ratio(row.median, mg.median if mg else None):>11}"
            f"{ratio(row.median, fl.median if fl else None):>9}"
            f"  {notes}"
        )
    mem = [r for k, r in results.rows.items() if k[0] == "memory"]
    if mem:
        lines.append("")
        lines.append(
            f"{'memory':<18}{'variant':<20}{'engine':<13}{'traced B/node':>14}{'peak bwd B/node':>16}"
            f"{'RSS B/node':>12}  notes"
        )
        for row in mem:
            ex = row.extra

            def num(k: str, ex: dict[str, Any] = ex) -> str:
                return "-" if ex.get(k) is None else f"{ex[k]:.0f}"

            lines.append(
                f"{'':<18}{row.variant:<20}{row.engine:<13}{num('traced_per_node'):>14}"
                f"{num('traced_backward_peak_per_node'):>16}{num('rss_per_node'):>12}"
                f"  {row.error or ex.get('note', '')}"
            )
    return "\n".join(lines)


def targets(results: Results) -> list[str]:
    """The issue's targets for microgrannd, each met or not, from this run."""
    out = []

    def speedup(workload: str, variant: str) -> float | None:
        a = results.get(workload, variant, "micrograd")
        b = results.get(workload, variant, "microgrannd")
        if a is None or b is None or a.median is None or b.median is None:
            return None
        return a.median / b.median

    for variant, goal in (("gc on", 10.0), ("gc off", 2.0)):
        s = speedup("mlp_step", variant)
        if s is not None:
            out.append(
                f"mlp_step {variant}: {s:.1f}x faster than micrograd (target >= {goal:g}x): "
                f"{'met' if s >= goal else 'NOT met'}"
            )
    for engine in ("compiled", "compiled-tape"):
        for variant in ("gc on", "gc off"):
            c = compiled_summary(results, variant, engine)
            if c is None:
                continue
            parts = []
            if c["per_floor"] is not None:
                met = "met" if c["per_floor"] <= 3 else "NOT met"
                parts.append(f"{c['per_floor']:.2f}x the floor (target <= 3x: {met})")
            if c["micrograd_per"] is not None:
                parts.append(f"{c['micrograd_per']:.0f}x faster than micrograd")
            steps = c["amortised_after_steps"]
            met = "met" if steps is not None and steps <= 50 else "NOT met"
            parts.append(
                f"compiled in {c['compile_seconds']:.2f} s ({c['nodes']:,} nodes), paid back against "
                f"microgrannd after {'never' if steps is None else steps} steps (target <= 50: {met})"
            )
            out.append(f"mlp_step {engine} {variant}: " + "; ".join(parts))
    for kind in PRIMITIVE_KINDS:
        s = speedup(f"primitive {kind}", "gc on")
        a = results.get(f"primitive {kind}", "gc on", "micrograd")
        b = results.get(f"primitive {kind}", "gc on", "microgrannd")
        if s is not None and a is not None and b is not None:
            fb = sum(statistics.median(b.phases[k]) for k in ("forward", "backward")) / sum(
                statistics.median(a.phases[k]) for k in ("forward", "backward")
            )
            out.append(
                f"primitive {kind} (gc on): forward+backward+freeing {1 / s:.2f} of micrograd's "
                f"(forward+backward alone {fb:.2f}; target <= 0.33, judged with freeing): "
                f"{'met' if 1 / s <= 1 / 3 else 'NOT met'}"
            )
    for k, row in results.rows.items():
        if k[0] == "memory" and row.engine == "microgrannd" and row.extra.get("traced_per_node") is not None:
            b = row.extra["traced_per_node"]
            out.append(
                f"memory: {b:.0f} bytes per node (tracemalloc; target <= 300): "
                f"{'met' if b <= 300 else 'NOT met'}"
            )
    for mode in ("on", "off"):
        chain = [
            (chain_size(r.variant), r.median)
            for k, r in results.rows.items()
            if k[0] == "chain" and k[2] == "microgrannd" and r.median is not None and k[1].endswith(mode)
        ]
        if len(chain) > 1:
            (n0, t0), (n1, t1) = chain[1], chain[-1]  # from the second size (the first is tiny)
            grow = (t1 / n1) / (t0 / n0)
            out.append(
                f"chain gc {mode}: largest N {n1:,}; time per step at N={n1:,} is {grow:.2f}x that at "
                f"N={n0:,} ({'linear' if grow < 2 else 'NOT linear'})"
            )
    return out


def survivors(results: Results) -> list[str]:
    """The largest chain each engine completed."""
    best: dict[str, int] = {}
    for k, row in results.rows.items():
        if k[0] == "chain" and row.median is not None:
            n = chain_size(k[1])
            best[k[2]] = max(best.get(k[2], 0), n)
    return [f"chain: {name} survives N = {n:,}" for name, n in sorted(best.items())]


# --------------------------------------------------------------------------
# Main


@dataclass
class Config:
    """Sizes and repeats of one run."""

    blocks: int = 5
    steps: int = 2
    prim_repeats: int = 7
    prim_reps: int = 20
    wide_n: int = 100_000
    wide_repeats: int = 5
    chain_sizes: tuple[int, ...] = (100, 400, 1_000, 10_000, 100_000, 1_000_000)
    chain_repeats: int = 3
    chain_budget: float = 120.0
    memory_steps: int = MEMORY_STEPS
    mlp_points: int = 100


QUICK = Config(
    blocks=2,
    steps=1,
    prim_repeats=3,
    prim_reps=4,
    wide_n=10_000,
    wide_repeats=2,
    chain_sizes=(100, 400, 1_000, 10_000),
    chain_repeats=2,
    chain_budget=30.0,
    memory_steps=10_000,
)

WORKLOADS = ("mlp_step", "primitive", "wide", "chain", "memory")


# --------------------------------------------------------------------------
# Workers: each engine runs in an interpreter of its own, so one engine's
# imports and garbage (PyTorch brings hundreds of thousands of objects for the
# collector to scan) do not slow another down; the parent interleaves them.


def run_task(
    task: dict[str, Any], engines: dict[str, Engine], with_floor: bool, mlp_only: Sequence[MlpRunner] = ()
) -> Results:
    """One unit of work (one block or repeat) for the engines of this process.

    ``mlp_only``: this process's runners of mlp_step alone, kept across tasks
    (a compiled runner compiles once).
    """
    results = Results()
    kind, mode = task["task"], task.get("mode", "on")
    if kind == "mlp":
        runners = mlp_runners(engines, with_floor) + list(mlp_only)
        bench_mlp(results, runners, [mode], blocks=1, steps=task["steps"], points=task.get("points", 100))
    elif kind == "primitive":
        bench_primitives(results, engines, with_floor, [mode], 1, task["reps"], kinds=[task["kind"]])
    elif kind == "wide":
        bench_wide(results, engines, with_floor, [mode], 1, task["n"])
    elif kind == "chain":
        n = task["n"]
        want = floor_chain(n)[2]
        variant = chain_variant(n, mode)
        with gc_mode(mode):
            for name, e in engines.items():
                gc.collect()
                run_checked(results.row("chain", variant, name), want, partial(graph_chain, e, n))
            if with_floor:
                run_checked(results.row("chain", variant, "floor"), want, partial(floor_chain, n))
    return results


def worker_main(name: str) -> int:
    """A worker: answer each task read from stdin with its rows as one JSON line."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing an engine prints may mix with the answers
    mlp_only: list[MlpRunner] = []
    if name in MLP_ONLY_RUNNERS:
        engines: dict[str, Engine] = {}
        try:
            mlp_only.append(MLP_ONLY_RUNNERS[name]())
            missing = {}
        except ImportError as e:
            missing = {name: f"not importable ({e})"}
    else:
        engines, missing = available_engines([name])
    print(json.dumps({"missing": missing.get(name, "")}), file=out, flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        rows = run_task(task, engines, name == "floor", mlp_only).rows.values()
        print(json.dumps([asdict(r) for r in rows]), file=out, flush=True)
    return 0


class Worker:
    """The parent's handle on one engine's worker process."""

    def __init__(self, name: str, clock: str) -> None:
        self.name = name
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--clock", clock]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self._read()
        self.missing = "the worker did not start" if hello is None else str(hello["missing"])

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def call(self, results: Results, task: dict[str, Any], key: tuple[str, str]) -> None:
        """Run a task there and merge its rows; a dead worker marks the ``key`` row."""
        row = results.row(*key, self.name)
        if row.error:
            return
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(task) + "\n")
            self.proc.stdin.flush()
            answer = self._read()
        except BrokenPipeError:
            answer = None
        if answer is None:
            row.error = f"crashed (worker exit status {self.proc.poll()})"
            return
        for d in answer:
            merge(results.row(d["workload"], d["variant"], d["engine"]), d)

    def close(self) -> None:
        """Let the worker finish."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def merge(row: Row, d: dict[str, Any]) -> None:
    """Add a worker's row (as a dict) to ours; an error sticks."""
    if row.error:
        return
    if d["error"]:
        row.error = d["error"]
        row.samples.clear()
        row.phases.clear()
        return
    row.samples.extend(d["samples"])
    for k, v in d["phases"].items():
        row.phases.setdefault(k, []).extend(v)
    row.extra.update(d["extra"])


# Runners that take part in mlp_step only, by engine name, each in a worker of
# its own (a compiled function keeps its traced graph alive: tens of thousands
# of nodes that would slow the collector of any engine sharing its process).
MLP_ONLY_RUNNERS: dict[str, Callable[[], MlpRunner]] = {
    "compiled": CompiledMlp,
    "compiled-tape": CompiledTapeMlp,
}

PRIMITIVE_KINDS = ("add", "mul", "pow", "relu")


def run(
    config: Config,
    engine_names: Sequence[str] = ENGINE_ORDER,
    workloads: Sequence[str] = WORKLOADS,
    modes: Sequence[str] = ("on", "off"),
    log: Callable[[str], None] = lambda s: None,
    clock: str = "wall",
) -> tuple[Results, dict[str, str]]:
    """Run the chosen workloads, engines interleaved; return the results and the missing engines."""
    results = Results()
    missing: dict[str, str] = {}
    pool: dict[str, Worker] = {}
    for name in engine_names:
        w = Worker(name, clock)
        if w.missing:
            missing[name] = w.missing
            w.close()
        else:
            pool[name] = w
    graph_names = [n for n in pool if n not in MLP_ONLY_RUNNERS]

    def each(key: tuple[str, str], task: dict[str, Any], mlp_only: bool = False) -> None:
        for name, w in pool.items():
            if mlp_only or name not in MLP_ONLY_RUNNERS:
                w.call(results, task, key)

    try:
        if "mlp_step" in workloads:
            log("mlp_step ...")
            for mode in modes:
                for _ in range(config.blocks):
                    task = {"task": "mlp", "mode": mode, "steps": config.steps, "points": config.mlp_points}
                    each(("mlp_step", f"gc {mode}"), task, mlp_only=True)
        if "primitive" in workloads:
            log("primitive ...")
            for kind in PRIMITIVE_KINDS:
                for mode in modes:
                    for _ in range(config.prim_repeats):
                        task = {"task": "primitive", "mode": mode, "kind": kind, "reps": config.prim_reps}
                        each((f"primitive {kind}", f"gc {mode}"), task)
        if "wide" in workloads:
            log("wide ...")
            for mode in modes:
                for _ in range(config.wide_repeats):
                    each(("wide", f"gc {mode}"), {"task": "wide", "mode": mode, "n": config.wide_n})
        if "chain" in workloads:
            log("chain ...")

            def sample(name: str, n: int, mode: str) -> None:
                task = {"task": "chain", "n": n, "mode": mode}
                pool[name].call(results, task, ("chain", chain_variant(n, mode)))

            bench_chain(
                results,
                graph_names,
                sample,
                config.chain_sizes,
                config.chain_repeats,
                config.chain_budget,
                clock,
                modes,
            )
        if "memory" in workloads:
            log("memory ...")
            bench_memory(results, [n for n in graph_names if n != "floor"], config.memory_steps)
    finally:
        for w in pool.values():
            w.close()
    return results, missing


def to_json(results: Results, missing: dict[str, str], config: Config) -> dict[str, Any]:
    """Everything measured, with the machine it ran on."""
    rows = []
    for row in results.rows.values():
        d = asdict(row)
        d["median"], d["min"] = row.median, row.min
        rows.append(d)
    return {
        "python": sys.version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "config": asdict(config),
        "missing": missing,
        "rows": rows,
        "compiled": {
            engine: {variant: summary for variant in ("gc on", "gc off")
                     if (summary := compiled_summary(results, variant, engine)) is not None}
            for engine in MLP_ONLY_RUNNERS
        },
        "targets": targets(results),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    p.add_argument("--json", metavar="PATH", help="also write every sample as JSON")
    p.add_argument(
        "--engines",
        default=",".join(ENGINE_ORDER),
        help="comma-separated subset of " + ",".join(ENGINE_ORDER),
    )
    p.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated subset of " + ",".join(WORKLOADS)
    )
    p.add_argument("--gc", default="on,off", help="collector modes to measure: on, off or on,off")
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall-clock time (default) or process CPU time (steadier on a busy machine)",
    )
    p.add_argument("--child", nargs=3, metavar=("WORKLOAD", "ENGINE", "N"), help=argparse.SUPPRESS)
    p.add_argument("--worker", metavar="ENGINE", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    set_clock(args.clock)
    if args.worker:
        return worker_main(args.worker)
    if args.child:
        kind, engine, n = args.child
        if kind.startswith("chain"):
            out = child_chain(engine, int(n), kind.partition(":")[2] or "on")
        else:
            out = child_memory(engine, int(n))
        print(json.dumps(out))
        return 0
    config = QUICK if args.quick else Config()
    names = [s for s in args.engines.split(",") if s]
    workloads = [s for s in args.workloads.split(",") if s]
    modes = [s for s in args.gc.split(",") if s]
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"gc thresholds {gc.get_threshold()}; clock: {args.clock}; one process per engine",
        flush=True,
    )
    t0 = time.perf_counter()
    results, missing = run(
        config, names, workloads, modes, log=lambda s: print(s, file=sys.stderr, flush=True), clock=args.clock
    )
    for name, why in missing.items():
        print(f"{name}: {why}")
    print(table(results))
    print()
    for line in survivors(results) + targets(results):
        print(line)
    print(
        f"\n(total {time.perf_counter() - t0:.0f} s; times per step, per op for primitive rows; "
        f"results checked against the floor to rel. {REL_TOL:g})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, missing, config), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
