"""Moons: micrograd's demo, an MLP 2-16-16-1 on two moons with hinge loss + L2, and its decision boundary."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _demolib import Progress, output_dir, parser, pyplot, relu_mlp_on_floats, save

import microgrannd as mg
from microgrannd import Value, nn

DESCRIPTION = __doc__.splitlines()[0]

StepFn = Callable[[nn.MLP, list[list[float]], list[float], float], tuple[float, float]]
"""One training step: ``step(model, X, y, lr) -> (loss, accuracy)``, updating the model in place."""


def make_moons(n: int = 100, noise: float = 0.1, seed: int = 0) -> tuple[list[list[float]], list[float]]:
    """Two interleaving half circles (labels -1 and +1) with Gaussian noise, shuffled."""
    rng = random.Random(seed)
    n_out = n // 2
    n_in = n - n_out
    pts: list[tuple[float, float, float]] = []
    for i in range(n_out):
        a = math.pi * i / max(n_out - 1, 1)
        pts.append((math.cos(a), math.sin(a), -1.0))
    for i in range(n_in):
        a = math.pi * i / max(n_in - 1, 1)
        pts.append((1.0 - math.cos(a), 0.5 - math.sin(a), 1.0))
    rng.shuffle(pts)
    X = [[x + rng.gauss(0, noise), y + rng.gauss(0, noise)] for x, y, _ in pts]
    return X, [lab for _, _, lab in pts]


def objective(model: nn.MLP, X: list[list[float]], y: list[float], scores: list[Any] | None = None) -> Value:
    """micrograd's objective: mean hinge loss of the scores plus ``1e-4 * sum(p^2)``."""
    scores = [model(x) for x in X] if scores is None else scores
    return nn.hinge(scores, y) + nn.l2(model.parameters(), 1e-4)


def loss_and_accuracy(model: nn.MLP, X: list[list[float]], y: list[float]) -> tuple[Value, float]:
    """The objective, and the accuracy of the scores it was computed from."""
    scores = [model(x) for x in X]
    total = objective(model, X, y, scores)
    right = sum((yi > 0) == (s.data > 0) for yi, s in zip(y, scores, strict=True))  # type: ignore[union-attr]
    acc = right / len(y)
    return total, acc


def eager_step(model: nn.MLP, X: list[list[float]], y: list[float], lr: float) -> tuple[float, float]:
    """Forward, backward and an SGD update, building the graph every step."""
    loss, acc = loss_and_accuracy(model, X, y)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data, acc


def compiled_step() -> StepFn:
    """A step that traces the objective once with ``microgrannd.compile``, then runs it on plain floats.

    The parameters are reached through the closure, so the compiled function
    reads their current data at every call and ``backward`` adds to their grads.
    """
    compiled: dict[int, mg.Compiled] = {}

    def step(model: nn.MLP, X: list[list[float]], y: list[float], lr: float) -> tuple[float, float]:
        c = compiled.get(id(model))
        if c is None:
            c = compiled[id(model)] = mg.compile(lambda X, y: objective(model, X, y), X, y, argnums=())
        acc = accuracy(model, X, y)  # before the update, as the eager step reports it
        model.zero_grad()
        loss = c.backward(X, y)
        for p in model.parameters():
            p.data -= lr * p.grad
        return loss, acc

    return step


STEPS: dict[str, Callable[[], StepFn]] = {"eager": lambda: eager_step, "compiled": compiled_step}
"""Step functions by name (each entry makes a fresh one)."""


@dataclass
class History:
    """Loss and accuracy per step."""

    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)


def train(
    model: nn.MLP,
    X: list[list[float]],
    y: list[float],
    steps: int,
    step: StepFn = eager_step,
    progress: Callable[[int, float, float], None] | None = None,
) -> History:
    """Full-batch training with micrograd's schedule ``lr = 1.0 - 0.9 * k / steps``."""
    hist = History()
    for k in range(steps):
        loss, acc = step(model, X, y, 1.0 - 0.9 * k / steps)
        hist.losses.append(loss)
        hist.accuracies.append(acc)
        if progress is not None:
            progress(k + 1, loss, acc)
    return hist


def score(model: nn.MLP, x: list[float]) -> float:
    """The network's score on plain floats (no graph)."""
    return relu_mlp_on_floats(model, x)[0]


def accuracy(model: nn.MLP, X: list[list[float]], y: list[float]) -> float:
    """Fraction of points on the right side of the boundary."""
    return sum((score(model, x) > 0) == (t > 0) for x, t in zip(X, y, strict=True)) / len(y)


def plot_boundary(
    model: nn.MLP, X: list[list[float]], y: list[float], path: Path, plt: Any, title: str
) -> None:
    """The decision regions on a grid, with the training points."""
    h = 0.05
    xs = [-1.6 + h * i for i in range(int(4.2 / h) + 1)]
    ys = [-1.2 + h * j for j in range(int(2.9 / h) + 1)]
    Z = [[1.0 if score(model, [a, b]) > 0 else -1.0 for a in xs] for b in ys]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.contourf(xs, ys, Z, levels=[-2, 0, 2], colors=["#f4b6b6", "#b6cdf4"], alpha=0.8)
    ax.scatter([p[0] for p in X], [p[1] for p in X], c=["#c0392b" if t < 0 else "#2c5aa0" for t in y], s=18)
    ax.set_title(title)
    save(fig, path)


def main(argv: list[str] | None = None) -> int:
    """Train micrograd's moons network and draw its decision boundary."""
    p = parser("moons", DESCRIPTION)
    p.add_argument("--steps", type=int, help="training steps (default 100, micrograd's)")
    p.add_argument("--samples", type=int, default=100, help="points (default %(default)s)")
    p.add_argument("--init", default="uniform", choices=sorted(nn.INITS), help="init (default: micrograd's)")
    p.add_argument("--step", default="eager", choices=sorted(STEPS), help="step function (default: eager)")
    p.add_argument("--compiled", action="store_const", const="compiled", dest="step",
                   help="trace the objective once (microgrannd.compile) and train on plain floats")
    args = p.parse_args(argv)
    steps = args.steps or 100  # micrograd's demo length is already short
    X, y = make_moons(args.samples, 0.1, seed=args.seed)
    model = nn.MLP(2, [16, 16, 1], init=args.init, rng=args.seed)
    widths = "-".join(str(n) for n in [2, *(len(layer.neurons) for layer in model.layers)])
    print(f"MLP {widths} (relu hidden layers, linear output), hinge loss + L2 1e-4, SGD lr 1.0 -> 0.1")
    n_params = len(model.parameters())
    print(f"number of parameters {n_params}; {len(X)} points; init {args.init}; {steps} steps, {args.step} step")
    with Progress(steps, "training") as bar:
        tick = lambda k, loss, acc: bar.update(k, f"loss {loss:.4f}")
        hist = train(model, X, y, steps, STEPS[args.step](), tick)
    for k in sorted({0, steps // 4, steps // 2, 3 * steps // 4, steps - 1}):
        print(f"  step {k:3d} loss {hist.losses[k]:.6f} accuracy {hist.accuracies[k] * 100:.0f}%")
    final = accuracy(model, X, y)
    print(f"final accuracy {final:.2f} (after the last update)")
    plt = pyplot(not args.no_plots)
    if plt is not None:
        title = f"MLP 2-16-16-1, {steps} steps, accuracy {final:.2f}"
        plot_boundary(model, X, y, output_dir(Path(args.out)) / "decision_boundary.png", plt, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
