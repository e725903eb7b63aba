"""Vanishing gradients: a 10-layer XOR network with sigmoid, tanh, relu and leaky relu."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from _demolib import Progress, output_dir, parser, pyplot, save

from microgrannd import nn

DESCRIPTION = __doc__.splitlines()[0]
XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_Y = [0.0, 1.0, 1.0, 0.0]
ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu"]
SIZES = [5] * 9 + [1]  # nine hidden layers of 5 units, one output: ten weight layers


@dataclass
class Run:
    """One activation's training record."""

    activation: str
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    layer_grads: list[list[float]] = field(default_factory=list)  # per record: mean |dW| per layer
    accuracy: float = 0.0
    outputs: list[float] = field(default_factory=list)


def layer_grad_means(model: nn.MLP) -> list[float]:
    """Mean absolute gradient of each layer's weights (biases left out)."""
    return [
        sum(abs(w.grad) for n in layer.neurons for w in n.w) / sum(len(n.w) for n in layer.neurons)
        for layer in model.layers
    ]


def train(
    activation: str,
    steps: int,
    lr: float,
    seed: int,
    record_every: int = 50,
    progress: Progress | None = None,
) -> Run:
    """Train the 10-layer network on XOR with full-batch gradient descent; record loss and gradients."""
    model = nn.MLP(2, SIZES, activation, init="normal", rng=seed)
    opt = nn.SGD(model.parameters(), lr=lr)
    run = Run(activation)
    for step in range(steps + 1):
        logits = [model.forward(x)[0] for x in XOR_X]
        loss = nn.binary_cross_entropy_with_logits(logits, XOR_Y)
        opt.zero_grad()
        loss.backward()
        if step % record_every == 0 or step == steps:
            run.steps.append(step)
            run.losses.append(loss.data)
            run.layer_grads.append(layer_grad_means(model))
            if progress is not None:
                progress.update(step, f"{activation} loss {loss.data:.4f}")
        if step < steps:
            opt.step()
    probs = [1.0 / (1.0 + math.exp(-z.data)) for z in logits]
    run.outputs = probs
    run.accuracy = sum((p > 0.5) == (y > 0.5) for p, y in zip(probs, XOR_Y, strict=True)) / len(XOR_Y)
    return run


def plot(runs: list[Run], out: Path, plt: object) -> None:
    """Gradient magnitude per layer over training, one panel per activation; and the loss curves."""
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), sharey=True)  # type: ignore[attr-defined]
    cmap = plt.get_cmap("viridis")  # type: ignore[attr-defined]
    for ax, r in zip(axes, runs, strict=True):
        n_layers = len(r.layer_grads[0])
        for k in range(n_layers):
            ys = [max(g[k], 1e-30) for g in r.layer_grads]
            ax.plot(r.steps, ys, color=cmap(k / (n_layers - 1)), label=f"layer {k + 1}")
        ax.set_yscale("log")
        ax.set_title(f"{r.activation}: accuracy {r.accuracy:.2f}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("mean |d loss / d w| in the layer")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle("Gradient reaching each layer (layer 1 = next to the input)")
    save(fig, out / "gradients_per_layer.png")

    fig, ax = plt.subplots(figsize=(6, 4))  # type: ignore[attr-defined]
    for r in runs:
        ax.plot(r.steps, r.losses, label=r.activation)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("binary cross-entropy")
    ax.legend()
    ax.set_title("XOR, 10-layer network")
    save(fig, out / "loss.png")


def main(argv: list[str] | None = None) -> int:
    """Train one network per activation and report accuracy and first-layer gradients."""
    p = parser("vanishing_gradients", DESCRIPTION, seed=8)
    p.add_argument("--steps", type=int, help="training steps (default 2000; 20000 with --full)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.05; 0.01 with --full, the tutorial's)")
    args = p.parse_args(argv)
    steps = args.steps or (20000 if args.full else 2000)
    lr = args.lr or (0.01 if args.full else 0.05)
    print(f"XOR with 2 -> 9 x 5 hidden -> 1, standard normal init, BCE on the logit, lr {lr}, {steps} steps")
    runs = []
    with Progress(steps * len(ACTIVATIONS), "training") as bar:
        for i, act in enumerate(ACTIVATIONS):
            sub = _Offset(bar, i * steps)
            every = max(steps // 200, 1)
            runs.append(train(act, steps, lr, args.seed, record_every=every, progress=sub))  # type: ignore[arg-type]
    print(f"{'activation':<11} {'accuracy':>8} {'layer-1 |grad|, start':>22} {'layer-10':>9}")
    for r in runs:
        g0 = r.layer_grads[0]
        print(f"{r.activation:<11} {r.accuracy:>8.2f} {g0[0]:>22.3e} {g0[-1]:>9.3e}")
    print("outputs:")
    for r in runs:
        print(f"  {r.activation:<11} " + "  ".join(f"{o:.4f}" for o in r.outputs))
    print("The sigmoid's derivative is at most 0.25, one factor per layer: the first layers get almost no")
    print("gradient and the network stays at 0.5. (With 5-unit relu layers and standard normal weights, some")
    print("seeds start with a dead layer, zero gradient below it; leaky relu keeps a small slope there.)")
    plt = pyplot(not args.no_plots)
    if plt is not None:
        plot(runs, output_dir(Path(args.out)), plt)
    return 0


class _Offset:
    """Report one run's steps on a shared progress bar."""

    def __init__(self, bar: Progress, offset: int) -> None:
        self.bar, self.offset = bar, offset

    def update(self, done: int, note: str = "") -> None:
        self.bar.update(self.offset + done, note)


if __name__ == "__main__":
    sys.exit(main())
