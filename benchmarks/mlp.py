"""micrograd's demo training step, on every engine: the model, the floor and the step runners.

The network and loss are micrograd's demo: an MLP 2-16-16-1 (ReLU hidden
layers, linear output) on two-moons points, mean hinge loss plus 1e-4 L2,
written once with operators (:func:`mlp_loss`).  A runner is one way of
running one training step on it: :class:`GraphMlp` on a graph engine,
:class:`FloorMlp` on plain floats with a hand-written backward, and
:class:`CompiledMlp` / :class:`CompiledTapeMlp` through ``microgrannd.compile``.
"""

from __future__ import annotations

import gc
import itertools
import math
import random
from collections.abc import Sequence
from functools import partial
from typing import Any

from benchmarks.engines import Engine, MicrogranndEngine, relu_f
from benchmarks.measure import StepOut, now

MLP_SIZES = (2, 16, 16, 1)
ALPHA = 1e-4
LR = 1.0  # micrograd's demo: 1.0 - 0.9 * k / 100 at step k = 0

Init = list[list[tuple[list[float], float]]]  # layer -> neuron -> (weights, bias), as floats
Layers = list[list[tuple[list[Any], Any]]]  # the same, as an engine's nodes


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


def init_params(seed: int = 0) -> Init:
    """micrograd's initialisation: weights uniform in [-1, 1], biases 0."""
    rng = random.Random(seed)
    layers = []
    for nin, nout in itertools.pairwise(MLP_SIZES):
        layers.append([([rng.uniform(-1, 1) for _ in range(nin)], 0.0) for _ in range(nout)])
    return layers


def flat(layers: Sequence[Sequence[tuple[Sequence[Any], Any]]]) -> list[Any]:
    """Parameters in micrograd's order: per neuron its weights then its bias."""
    return [p for layer in layers for w, b in layer for p in [*w, b]]


def make_layers(engine: Engine, init: Init) -> Layers:
    """The initial parameters as the engine's leaves."""
    return [[([engine.leaf(w) for w in ws], engine.leaf(b)) for ws, b in layer] for layer in init]


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


def seconds(ns: dict[str, int]) -> tuple[float, dict[str, float]]:
    """Phases in nanoseconds as (total seconds, {phase: seconds})."""
    phases = {k: v / 1e9 for k, v in ns.items()}
    return sum(phases.values()), phases


class MlpRunner:
    """One way of running the mlp_step workload.

    A runner is set up once with the data and initial parameters; ``step``
    resets the parameters (untimed), runs one timed training step and returns
    (total seconds, {phase: seconds}, {"loss", "grads", "params"}).  A
    compiled engine joins the benchmark by subclassing this and being listed
    in the ``only`` engines of the mlp_step workload (:mod:`benchmarks.workloads`).
    """

    name = "?"

    def setup(self, init: Init, xs: list[list[float]], ys: list[float]) -> None:
        """Keep the data and the initial parameters."""
        raise NotImplementedError

    def step(self) -> StepOut:
        """One timed step from the initial parameters."""
        raise NotImplementedError

    def extra(self) -> dict[str, Any]:
        """Numbers for the row beside its times (a compiled runner's compile time)."""
        return {}


class EngineMlp(MlpRunner):
    """A runner whose parameters are an engine's leaves."""

    engine: Engine

    def make_params(self, init: Init) -> None:
        """Make the parameter leaves and remember their initial values."""
        self.layers = make_layers(self.engine, init)
        self.params = flat(self.layers)
        self.init = flat(init)

    def reset(self) -> None:
        """Put the initial values back into the parameters (untimed)."""
        for p, x in zip(self.params, self.init, strict=False):
            self.engine.set_value(p, x)

    def result(self, loss: float) -> dict[str, Any]:
        """The numbers checked against the floor: loss, gradients, updated parameters."""
        e = self.engine
        return {"loss": loss, "grads": [e.grad(p) for p in self.params], "params": [e.value(p) for p in self.params]}


class GraphMlp(EngineMlp):
    """mlp_step on a graph-building engine, with the shared model code."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name

    def setup(self, init: Init, xs: list[list[float]], ys: list[float]) -> None:
        """Make the engine's parameter leaves."""
        self.make_params(init)
        self.xs, self.ys = xs, ys

    def step(self) -> StepOut:
        """build, zero_grad, backward, update, free; each phase timed."""
        e, params = self.engine, self.params
        self.reset()
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
        total, phases = seconds(
            {"build": t1 - t0, "zero_grad": t2 - t1, "backward": t3 - t2, "update": t4 - t3, "free": t6 - t5}
        )
        return total, phases, self.result(loss_value)


class FloorMlp(MlpRunner):
    """The same step on plain floats: forward keeps activations, backward by hand."""

    name = "floor"

    def __init__(self, dense: bool = False) -> None:
        # dense: compute every product of the backward, as a graph does, instead
        # of skipping neurons whose gradient is zero as a hand-written backward would
        self.dense = dense
        if dense:
            self.name = "floor-dense"

    def setup(self, init: Init, xs: list[list[float]], ys: list[float]) -> None:
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
        total, phases = seconds({"build": t1 - t0, "zero_grad": 0, "backward": t2 - t1, "update": t3 - t2, "free": 0})
        return total, phases, {"loss": loss, "grads": grads, "params": new}


def compile_mlp_loss(layers: Layers, xs: list[list[float]], ys: list[float], method: str = "auto") -> Any:
    """``microgrannd.compile`` of the shared loss over ``layers``' parameters (captured).

    The data are the compiled function's arguments (no gradients taken for
    them), so it runs on any batch of the same size; ``backward(xs, ys)`` adds
    the parameters' gradients to their ``grad`` and returns the loss.
    """
    from microgrannd import compile

    return compile(partial(mlp_loss, layers), xs, ys, argnums=(), method=method)


class CompiledMlp(EngineMlp):
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

    def setup(self, init: Init, xs: list[list[float]], ys: list[float]) -> None:
        """Compile once for this data and model shape (again only if they change)."""
        key = (init, xs, ys)
        if key == self.key:
            return
        e = self.engine
        self.make_params(init)
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
        self.reset()
        t0 = now()
        e.zero_grad(params)
        t1 = now()
        loss = self.run()
        t2 = now()
        e.sgd(params, LR)
        t3 = now()
        total, phases = seconds({"zero_grad": t1 - t0, "fwd+bwd": t2 - t1, "update": t3 - t2})
        return total, phases, self.result(loss)

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


def setup(runner: MlpRunner, points: int) -> MlpRunner:
    """Set ``runner`` up on micrograd's initial parameters and ``points`` two-moons points."""
    runner.setup(init_params(), *two_moons(points))
    return runner


def reference(points: int) -> dict[str, Any]:
    """The floor's numbers for one step on ``points`` points: what every engine must reproduce."""
    return setup(FloorMlp(), points).step()[2]
