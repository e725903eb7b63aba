"""Compiled training step against the plain-float floor, microgrannd and micrograd.

The workload is micrograd's demo step: an MLP 2-16-16-1 (ReLU hidden layers,
linear output) on 100 two-moons points, hinge loss + 1e-4 L2, forward +
backward + SGD update (about 65,000 scalar operations).  Engines, run on the
same weights and checked against each other before any time is reported:

* ``floor``: the same arithmetic on plain floats with a hand-written backward;
* ``compiled`` / ``compiled-tape``: :func:`microgrannd.compile` of the loss
  (generated straight-line code / flat-tape interpreter), then the update;
* ``microgrannd``: the graph built and differentiated every step;
* ``micrograd``: micrograd 0.1.0 (the benchmark extra), if installed.

Run: ``PYTHONPATH=. python demos/compile_bench.py [--repeats N] [--micrograd-steps N]``.
The benchmark (``demos/benchmark.py``) can call :func:`compiled_mlp_step`.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import microgrannd
from microgrannd import Value

ALPHA = 1e-4


# --------------------------------------------------------------------------
# Data and a micrograd-shaped model on microgrannd Values


def make_moons(n: int = 100, noise: float = 0.1, seed: int = 1) -> tuple[list[list[float]], list[float]]:
    """Two interleaving half circles, labels -1/+1 (as micrograd's demo uses)."""
    rng = random.Random(seed)
    X: list[list[float]] = []
    y: list[float] = []
    for i in range(n):
        upper = i < n // 2
        t = math.pi * rng.random()
        if upper:
            px, py = math.cos(t), math.sin(t)
        else:
            px, py = 1.0 - math.cos(t), 0.5 - math.sin(t)
        X.append([px + rng.gauss(0.0, noise), py + rng.gauss(0.0, noise)])
        y.append(-1.0 if upper else 1.0)
    return X, y


def init_weights(sizes: Sequence[int] = (2, 16, 16, 1), seed: int = 1337) -> list[list[list[float]]]:
    """Per layer, per neuron: ``[w_0, ..., w_{nin-1}, b]`` (uniform [-1, 1], bias 0)."""
    rng = random.Random(seed)
    return [[[rng.uniform(-1.0, 1.0) for _ in range(nin)] + [0.0] for _ in range(nout)]
            for nin, nout in itertools.pairwise(sizes)]


class MLP:
    """micrograd's MLP (relu hidden layers, linear last), on microgrannd Values."""

    def __init__(self, weights: list[list[list[float]]]) -> None:
        self.layers = [[[Value(w) for w in neuron] for neuron in layer] for layer in weights]

    def __call__(self, x: Sequence[Any]) -> Any:
        last = len(self.layers) - 1
        for li, layer in enumerate(self.layers):
            out = []
            for neuron in layer:
                *w, b = neuron
                act = sum((wi * xi for wi, xi in zip(w, x, strict=True)), b)
                out.append(act if li == last else act.relu())
            x = out
        return x[0]

    def parameters(self) -> list[Value]:
        """Every weight and bias, in layer/neuron order."""
        return [p for layer in self.layers for neuron in layer for p in neuron]


def hinge_loss(model: Callable[[Any], Any], params: Sequence[Any], X: Sequence[Any],
               y: Sequence[float]) -> Any:
    """micrograd's demo loss: mean hinge loss + ALPHA * sum of squared parameters."""
    scores = [model(x) for x in X]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum(p * p for p in params)
    return data_loss + reg_loss


def sgd(params: Sequence[Any], k: int, steps: int = 100) -> None:
    """micrograd's demo update: learning rate 1.0 - 0.9 k / steps."""
    lr = 1.0 - 0.9 * k / steps
    for p in params:
        p.data -= lr * p.grad


# --------------------------------------------------------------------------
# Step functions


def compiled_mlp_step(model: MLP, X: list[list[float]], y: list[float], method: str = "auto"
                      ) -> tuple[Callable[[int], float], float]:
    """Compile the demo loss over ``model``'s parameters; return ``(step, compile_seconds)``.

    ``step(k)`` zeroes the gradients, runs the compiled forward+backward
    (which adds the gradients to each parameter's ``grad``), applies the SGD
    update and returns the loss.  The batch is an argument of the compiled
    loss, so minibatches of the same size reuse the compilation.
    """
    params = model.parameters()

    def loss(Xb: list[list[Any]], yb: list[Any]) -> Any:
        return hinge_loss(model, params, Xb, yb)

    t = time.perf_counter()
    compiled = microgrannd.compile(loss, X, y, argnums=(), method=method)
    seconds = time.perf_counter() - t

    def step(k: int) -> float:
        for p in params:
            p.grad = 0.0
        value = compiled.backward(X, y)
        sgd(params, k)
        return value

    step.compiled = compiled  # type: ignore[attr-defined]
    return step, seconds


def microgrannd_mlp_step(model: MLP, X: list[list[float]], y: list[float]) -> Callable[[int], float]:
    """The uncompiled step: build the graph, backward, update."""
    params = model.parameters()

    def step(k: int) -> float:
        total = hinge_loss(model, params, X, y)
        for p in params:
            p.grad = 0.0
        total.backward()
        sgd(params, k)
        return float(total.data)

    return step


def floor_mlp_step(weights: list[list[list[float]]], X: list[list[float]], y: list[float],
                   skip_zeros: bool = True) -> Callable[[int], float]:
    """The same arithmetic on plain floats with a hand-written backward (in place on ``weights``).

    With ``skip_zeros`` (the default, the strictest floor) the backward skips
    points whose hinge is inactive and neurons whose gradient is zero, as a
    hand-written backward would; without it every product is computed, as in
    the graph.
    """
    n = len(X)
    scale = 1.0 / n

    def step(k: int) -> float:
        grads = [[[0.0] * len(neuron) for neuron in layer] for layer in weights]
        last = len(weights) - 1
        data_loss = 0.0
        for x, yi in zip(X, y, strict=True):
            acts = [x]  # inputs of each layer
            pre = []
            h = x
            for li, layer in enumerate(weights):
                zs = []
                for neuron in layer:
                    s = neuron[-1]
                    for wi, hi in zip(neuron, h, strict=False):  # zip stops at len(h): skips the bias
                        s = s + wi * hi
                    zs.append(s)
                pre.append(zs)
                h = zs if li == last else [z if z > 0 else 0.0 for z in zs]
                acts.append(h)
            margin = 1 + -yi * h[0]
            data_loss = data_loss + (margin if margin > 0 else 0.0)
            if skip_zeros and margin <= 0:
                continue
            up = [scale * -yi if margin > 0 else 0.0]  # d loss / d output of the last layer
            for li in range(last, -1, -1):
                layer, g_layer, h_in = weights[li], grads[li], acts[li]
                if li != last:
                    up = [u if z > 0 else 0.0 for u, z in zip(up, pre[li], strict=True)]
                down = [0.0] * len(h_in)
                for neuron, gn, u in zip(layer, g_layer, up, strict=True):
                    if skip_zeros and u == 0.0:
                        continue
                    for i, hi in enumerate(h_in):
                        gn[i] += u * hi
                        down[i] += u * neuron[i]
                    gn[-1] += u
                up = down
        reg = 0.0
        for layer, g_layer in zip(weights, grads, strict=True):
            for neuron, gn in zip(layer, g_layer, strict=True):
                for i, w in enumerate(neuron):
                    reg = reg + w * w
                    gn[i] += 2.0 * ALPHA * w
        total = data_loss * scale + ALPHA * reg
        lr = 1.0 - 0.9 * k / 100
        for layer, g_layer in zip(weights, grads, strict=True):
            for neuron, gn in zip(layer, g_layer, strict=True):
                for i in range(len(neuron)):
                    neuron[i] -= lr * gn[i]
        return total

    return step


def micrograd_mlp_step(weights: list[list[list[float]]], X: list[list[float]], y: list[float]
                       ) -> Callable[[int], float] | None:
    """micrograd 0.1.0's demo step on the same weights (None if micrograd is missing)."""
    try:
        from micrograd.engine import Value as MValue
    except ImportError:
        return None
    layers = [[[MValue(w) for w in neuron] for neuron in layer] for layer in weights]
    params = [p for layer in layers for neuron in layer for p in neuron]

    def model(x: Sequence[Any]) -> Any:
        last = len(layers) - 1
        for li, layer in enumerate(layers):
            out = []
            for neuron in layer:
                *w, b = neuron
                act = sum((wi * xi for wi, xi in zip(w, x, strict=True)), b)
                out.append(act if li == last else act.relu())
            x = out
        return x[0]

    def step(k: int) -> float:
        inputs = [list(map(MValue, row)) for row in X]
        total = hinge_loss(model, params, inputs, y)
        for p in params:
            p.grad = 0
        total.backward()
        sgd(params, k)
        return float(total.data)

    return step


# --------------------------------------------------------------------------
# Measuring


def _time_steps(step: Callable[[int], float], steps: int) -> list[float]:
    times = []
    for k in range(steps):
        t = time.perf_counter()
        step(k)
        times.append(time.perf_counter() - t)
    return times


def check(steps: int = 3) -> float:
    """Run every engine for ``steps`` steps from the same weights; return the largest relative difference."""
    X, y = make_moons()
    w = init_weights()
    runs: dict[str, list[float]] = {}
    floor_w = [[list(n) for n in layer] for layer in w]
    runs["floor"] = [floor_mlp_step(floor_w, X, y)(k) for k in range(steps)]
    dense_w = [[list(n) for n in layer] for layer in w]
    runs["floor-dense"] = [floor_mlp_step(dense_w, X, y, skip_zeros=False)(k) for k in range(steps)]
    s = microgrannd_mlp_step(MLP(w), X, y)
    runs["microgrannd"] = [s(k) for k in range(steps)]
    for method in ("codegen", "tape"):
        cs, _ = compiled_mlp_step(MLP(w), X, y, method)
        runs[method] = [cs(k) for k in range(steps)]
    ms = micrograd_mlp_step(w, X, y)
    if ms is not None:
        runs["micrograd"] = [ms(k) for k in range(steps)]
    ref = runs["microgrannd"]
    if runs["codegen"] != ref or runs["tape"] != ref:
        raise AssertionError(f"compiled losses differ from the graph's: {runs}")
    worst = 0.0
    for name, losses in runs.items():
        for a, b in zip(losses, ref, strict=True):
            worst = max(worst, abs(a - b) / abs(b))
        if worst > 1e-9:
            raise AssertionError(f"{name} disagrees with microgrannd: {losses} vs {ref}")
    return worst


def _interleave(engines: dict[str, Callable[[int], float]], rounds: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, step in engines.items():
            results[name].extend(_time_steps(step, 1))
    return results


def main(argv: list[str] | None = None) -> None:
    """Print the per-step table, the compile times and how many steps amortise them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="timed steps per fast engine (default 20)")
    ap.add_argument("--slow-steps", type=int, default=3, help="timed steps for microgrannd/micrograd")
    args = ap.parse_args(argv)
    worst = check()
    print(f"all engines agree over 3 steps (largest relative loss difference {worst:.1e});"
          " compiled losses equal the graph's bit for bit")
    X, y = make_moons()
    w = init_weights()
    gc.collect()
    # Phase 1, nothing compiled alive (a compiled function keeps its traced
    # graph for drawing; tens of thousands of live nodes slow every full
    # collection of the uncompiled engines).
    slow: dict[str, Callable[[int], float]] = {
        "floor": floor_mlp_step([[list(n) for n in layer] for layer in w], X, y),
        "microgrannd": microgrannd_mlp_step(MLP(w), X, y),
    }
    ms = micrograd_mlp_step(w, X, y)
    if ms is not None:
        slow["micrograd"] = ms
    phase1 = _interleave(slow, args.slow_steps)
    del slow, ms
    gc.collect()
    # Phase 2: compile, then the compiled steps against the floor.
    compile_s: dict[str, float] = {}
    fast: dict[str, Callable[[int], float]] = {
        "floor": floor_mlp_step([[list(n) for n in layer] for layer in w], X, y),
        "floor-dense": floor_mlp_step([[list(n) for n in layer] for layer in w], X, y, skip_zeros=False)}
    for method in ("codegen", "tape"):
        step, seconds = compiled_mlp_step(MLP(w), X, y, method)
        compile_s[method] = seconds
        fast[f"compiled-{method}"] = step
    phase2 = _interleave(fast, args.repeats)
    floor = statistics.median(phase2["floor"])
    mg = statistics.median(phase1["micrograd"]) if "micrograd" in phase1 else math.nan
    print(f"\nmlp_step (2-16-16-1, 100 moons, hinge + L2, fwd+bwd+SGD), Python {sys.version.split()[0]}")
    floor1 = statistics.median(phase1["floor"])
    print(f"floor in phase 1 (with the uncompiled engines): {floor1 * 1e3:.2f} ms")
    print(f"{'engine':<18}{'median ms':>11}{'min ms':>9}{'x floor':>9}{'micrograd/x':>13}")
    rows = {**phase2, **{k: v for k, v in phase1.items() if k != "floor"}}
    for name, ts in rows.items():
        med = statistics.median(ts)
        print(f"{name:<18}{med * 1e3:>11.2f}{min(ts) * 1e3:>9.2f}{med / floor:>9.2f}{mg / med:>13.1f}")
    # against the uncompiled engine's best step (the median suffers from the
    # collector reclaiming micrograd's cycles): the conservative count
    plain = min(phase1["microgrannd"])
    for method, seconds in compile_s.items():
        step_s = statistics.median(phase2[f"compiled-{method}"])
        saved = plain - step_s
        print(f"compile ({method}): {seconds:.3f} s, amortised after "
              f"{math.ceil(seconds / saved) if saved > 0 else math.inf} steps "
              f"(saves {saved * 1e3:.1f} ms per step against the best uncompiled microgrannd step)")

if __name__ == "__main__":
    main()
