"""Compiled training step against the plain-float floor, microgrannd and micrograd, in one process.

The workload is micrograd's demo step: an MLP 2-16-16-1 (ReLU hidden layers,
linear output) on 100 two-moons points, hinge loss + 1e-4 L2, forward +
backward + SGD update (about 65,000 scalar operations).  The data, the model,
the loss, the floor and the step runners are the benchmark's
(:mod:`benchmarks.mlp`, whose ``mlp_step`` rows time the same engines, each
in a worker process of its own); this script adds, in one process:

* a check that the compiled losses equal the uncompiled graph's bit for bit
  over several training steps (micrograd's learning-rate schedule), and that
  every engine's first step matches the floor's numbers;
* a dense floor (``floor-dense``: every product of the backward computed,
  as in the graph) beside the sparse one (``floor``, which skips zero
  gradients as a hand-written backward would);
* two phases: the uncompiled engines first, then the compiled ones, so the
  traced graph a compiled function keeps alive does not slow the
  uncompiled engines' collector.

Run: ``python -m benchmarks.compile_bench [--repeats N] [--slow-steps N] [--points N]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import mlp
from benchmarks.engines import MicrogranndEngine, available_engines
from benchmarks.measure import REL_TOL, verify


def value_layers(init: mlp.Init) -> mlp.Layers:
    """The benchmark's layers (per neuron: weights, bias) as microgrannd leaves."""
    return mlp.make_layers(MicrogranndEngine(), init)


def sgd(params: Sequence[Any], k: int, steps: int = 100) -> None:
    """micrograd's demo update: learning rate 1.0 - 0.9 k / steps."""
    lr = 1.0 - 0.9 * k / steps
    for p in params:
        p.data -= lr * p.grad


def compiled_mlp_step(
    layers: mlp.Layers, X: list[list[float]], y: list[float], method: str = "auto"
) -> tuple[Callable[[int], float], float]:
    """Compile the benchmark's loss over ``layers``' parameters; return ``(step, compile_seconds)``.

    ``step(k)`` zeroes the gradients, runs the compiled forward+backward
    (which adds the gradients to each parameter's ``grad``), applies the SGD
    update of step ``k`` and returns the loss.  The batch is an argument of
    the compiled loss, so minibatches of the same size reuse the compilation.
    """
    params = mlp.flat(layers)
    t = time.perf_counter()
    compiled = mlp.compile_mlp_loss(layers, X, y, method)
    seconds = time.perf_counter() - t

    def step(k: int) -> float:
        for p in params:
            p.grad = 0.0
        value = float(compiled.backward(X, y))
        sgd(params, k)
        return value

    step.compiled = compiled  # type: ignore[attr-defined]
    return step, seconds


def microgrannd_mlp_step(layers: mlp.Layers, X: list[list[float]], y: list[float]) -> Callable[[int], float]:
    """The uncompiled step: build the graph, backward, update."""
    params = mlp.flat(layers)

    def step(k: int) -> float:
        total = mlp.mlp_loss(layers, X, y)
        for p in params:
            p.grad = 0.0
        total.backward()
        sgd(params, k)
        return float(total.data)

    return step


def check(steps: int = 3, points: int = 100) -> None:
    """Compiled losses equal the graph's over ``steps`` steps; every engine's first step matches the floor."""
    X, y = mlp.two_moons(points)
    init = mlp.init_params()
    graph_step = microgrannd_mlp_step(value_layers(init), X, y)
    ref = [graph_step(k) for k in range(steps)]
    for method in ("codegen", "tape"):
        step, _ = compiled_mlp_step(value_layers(init), X, y, method)
        losses = [step(k) for k in range(steps)]
        if losses != ref:
            raise AssertionError(f"compiled ({method}) losses differ from the graph's: {losses} vs {ref}")
    want = mlp.reference(len(X))
    for runner in one_process_runners(compiled=False):
        runner.setup(init, X, y)
        verify(runner.name, "mlp_step", runner.step()[2], want)


def one_process_runners(compiled: bool) -> list[mlp.MlpRunner]:
    """Phase 1 (uncompiled: microgrannd, micrograd if installed) or phase 2 (compiled), with the floors."""
    runners: list[mlp.MlpRunner] = [mlp.FloorMlp(), mlp.FloorMlp(dense=True)]
    if compiled:
        return [*runners, mlp.CompiledMlp(), mlp.CompiledTapeMlp()]
    engines, _ = available_engines(["microgrannd", "micrograd"])
    return [*runners, *(mlp.GraphMlp(e) for e in engines.values())]


def interleave(runners: list[mlp.MlpRunner], rounds: int, points: int = 100) -> dict[str, list[float]]:
    """Per round, one step of each runner on ``points`` two-moons points; the steps' times by runner name."""
    for r in runners:
        mlp.setup(r, points)
    times: dict[str, list[float]] = {r.name: [] for r in runners}
    for _ in range(rounds):
        for r in runners:
            times[r.name].append(r.step()[0])
    return times


def main(argv: list[str] | None = None) -> None:
    """Print the per-step table, the compile times and how many steps pay them back."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.compile_bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    ap.add_argument("--repeats", type=int, default=20, help="timed steps per fast engine (default 20)")
    ap.add_argument("--slow-steps", type=int, default=3, help="timed steps for microgrannd/micrograd")
    ap.add_argument("--points", type=int, default=100, help="two-moons points per step (default 100, the demo's)")
    args = ap.parse_args(argv)
    if min(args.repeats, args.slow_steps) < 1 or args.points < 4:
        ap.error("--repeats and --slow-steps must be at least 1, --points at least 4")
    check(points=args.points)
    print(
        "compiled losses equal the graph's bit for bit over 3 steps; every engine's first step "
        f"matches the floor's numbers (rel. {REL_TOL:g})"
    )
    gc.collect()
    phase1 = interleave(one_process_runners(compiled=False), args.slow_steps, args.points)
    gc.collect()
    runners = one_process_runners(compiled=True)
    phase2 = interleave(runners, args.repeats, args.points)
    compile_s = {r.name: r.compile_seconds for r in runners if isinstance(r, mlp.CompiledMlp)}
    floor = statistics.median(phase2["floor"])
    mg = statistics.median(phase1["micrograd"]) if "micrograd" in phase1 else math.nan
    print(f"\nmlp_step (2-16-16-1, {args.points} moons, hinge + L2, fwd+bwd+SGD), Python {sys.version.split()[0]}")
    print(f"floor in phase 1 (with the uncompiled engines): {statistics.median(phase1['floor']) * 1e3:.2f} ms")
    print(f"{'engine':<18}{'median ms':>11}{'min ms':>9}{'x floor':>9}{'micrograd/x':>13}")
    rows = {**phase2, **{k: v for k, v in phase1.items() if not k.startswith("floor")}}
    for name, ts in rows.items():
        med = statistics.median(ts)
        print(f"{name:<18}{med * 1e3:>11.2f}{min(ts) * 1e3:>9.2f}{med / floor:>9.2f}{mg / med:>13.1f}")
    # against the uncompiled engine's best step: the conservative count
    plain = min(phase1["microgrannd"])
    for name, seconds in compile_s.items():
        saved = plain - statistics.median(phase2[name])
        print(
            f"compile ({name}): {seconds:.3f} s, paid back after "
            f"{math.ceil(seconds / saved) if saved > 0 else math.inf} steps "
            f"(saves {saved * 1e3:.1f} ms per step against the best uncompiled microgrannd step)"
        )


if __name__ == "__main__":
    main()
