"""A graph whose structure changes every step, compiled once per structure.

A toy character-level sequence model, trained one sequence per step: token
ids pick rows of an embedding table (``mg.gather``: the id is data, not
structure), a small recurrent layer runs along the sequence, and each
position predicts the next token (cross-entropy).  Sequences have 3 to 8
tokens, so the graph has one of six shapes.  One ``mg.compile``'d function
serves them all: it traces once per length and reuses the code afterwards.

The script trains the same model twice from the same start, uncompiled
(building the graph every step) and compiled, checks that every loss and
every gradient is the same number, and measures the time per step of each
after warm-up, the trace-and-compile time per miss and the cache's hit rate.

Run: ``PYTHONPATH=. python demos/sequence_compile.py [--steps 200] [--dim 8] [--vocab 8] [--method tape]``.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from typing import Any

import microgrannd as mg
from microgrannd import Value, nn

MAX_LEN = 8
Params = tuple[list[list[Value]], list[list[Value]], list[list[Value]], list[list[Value]], list[list[Value]]]


def make_params(vocab: int, dim: int, seed: int) -> Params:
    """Embedding table (vocab x dim), positions (MAX_LEN x dim), recurrent, input and output weights."""
    rng = random.Random(seed)

    def matrix(rows: int, cols: int, scale: float) -> list[list[Value]]:
        return [[Value(rng.gauss(0.0, scale)) for _ in range(cols)] for _ in range(rows)]

    s = dim**-0.5
    return (matrix(vocab, dim, 0.5), matrix(MAX_LEN, dim, 0.1), matrix(dim, dim, s), matrix(dim, dim, s),
            matrix(vocab, dim, s))


def parameters(params: Params) -> list[Value]:
    """Every parameter, in a fixed order."""
    return [v for table in params for row in table for v in row]


def sequence_loss(params: Params, tokens: list[Any]) -> Any:
    """Mean cross-entropy of predicting ``tokens[t + 1]`` from ``tokens[: t + 1]``.

    ``tokens`` are Values (or, compiled, traced inputs) holding token ids: the
    embedding row and the target logit are picked with ``mg.gather``.  The
    position ``t`` is a plain int: the sequence's length is its structure.
    """
    wte, wpe, w_in, w_rec, w_out = params
    h: list[Any] = [0.0] * len(w_in)
    losses = []
    for t in range(len(tokens) - 1):
        x = [e + p for e, p in zip(mg.gather(wte, tokens[t]), wpe[t], strict=True)]
        h = [mg.tanh(sum((w * xi for w, xi in zip(wi, x, strict=True)), 0.0)
                     + sum((u * hj for u, hj in zip(ui, h, strict=True)), 0.0))
             for wi, ui in zip(w_in, w_rec, strict=True)]
        logits = [sum((w * hj for w, hj in zip(row, h, strict=True)), 0.0) for row in w_out]
        losses.append(nn.logsumexp(logits) - mg.gather(logits, tokens[t + 1]))
    return sum(losses, 0.0) * (1.0 / len(losses))


def make_data(n: int, vocab: int, seed: int) -> list[list[int]]:
    """``n`` sequences of 3 to 8 tokens from a fixed random Markov chain (so there is something to learn)."""
    rng = random.Random(seed)
    follow = [[rng.randrange(vocab) for _ in range(2)] for _ in range(vocab)]
    data = []
    for _ in range(n):
        seq = [rng.randrange(vocab)]
        for _ in range(rng.randint(3, MAX_LEN) - 1):
            seq.append(rng.choice(follow[seq[-1]]) if rng.random() < 0.9 else rng.randrange(vocab))
        data.append(seq)
    return data


def sgd(params: list[Value], lr: float) -> None:
    """One plain gradient step; gradients are zeroed for the next one."""
    for p in params:
        p.data -= lr * p.grad
        p.grad = 0.0


@dataclass
class Result:
    """What :func:`run` measured."""

    steps: int
    nodes: dict[int, int]  # traced nodes by sequence length
    losses_equal: bool
    grads_equal: bool
    first_loss: float
    last_loss: float
    eager_step_ms: float
    compiled_step_ms: float
    compile_ms_per_miss: float
    hits: int
    misses: int


def run(steps: int = 200, dim: int = 8, vocab: int = 8, seed: int = 0, lr: float = 0.1,
        warmup: int = 30, method: str = "auto") -> Result:
    """Train uncompiled and compiled side by side; compare every loss and gradient; time both."""
    data = make_data(steps, vocab, seed)
    eager, compiled = make_params(vocab, dim, seed), make_params(vocab, dim, seed)
    pe, pc = parameters(eager), parameters(compiled)
    step = mg.compile(lambda tokens: sequence_loss(compiled, tokens), argnums=(), method=method)
    losses_equal = grads_equal = True
    eager_time = compiled_time = 0.0
    first = last = 0.0
    nodes: dict[int, int] = {}
    for k, seq in enumerate(data):
        t0 = time.perf_counter()
        loss = sequence_loss(eager, [Value(float(tok), requires_grad=False) for tok in seq])
        loss.backward()
        t1 = time.perf_counter()
        value = step.backward([float(tok) for tok in seq])
        t2 = time.perf_counter()
        if len(seq) not in nodes:
            nodes[len(seq)] = step.num_nodes
        losses_equal &= value == loss.data
        grads_equal &= all(p.grad == q.grad for p, q in zip(pe, pc, strict=True))
        first, last = (loss.data if k == 0 else first), loss.data
        del loss
        t3 = time.perf_counter()
        sgd(pe, lr)
        t4 = time.perf_counter()
        sgd(pc, lr)
        t5 = time.perf_counter()
        if k >= warmup:  # after warm-up: every length has been traced (or nearly)
            eager_time += (t1 - t0) + (t4 - t3)
            compiled_time += (t2 - t1) + (t5 - t4)
    info = step.cache_info()
    timed = max(steps - warmup, 1)
    return Result(steps, dict(sorted(nodes.items())), losses_equal, grads_equal, first, last,
                  1e3 * eager_time / timed, 1e3 * compiled_time / timed,
                  1e3 * info.compile_seconds / max(info.misses, 1), info.hits, info.misses)


def main() -> None:
    """Print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", choices=["auto", "codegen", "tape"], default="auto")
    args = ap.parse_args()
    r = run(args.steps, args.dim, args.vocab, args.seed, method=args.method)
    print(f"{r.steps} steps, one sequence each (lengths 3..{MAX_LEN}), dim {args.dim}, vocab {args.vocab}, "
          f"method {args.method}")
    print("traced nodes by length:", ", ".join(f"{n}: {v:,}" for n, v in r.nodes.items()))
    print(f"loss {r.first_loss:.4f} -> {r.last_loss:.4f}; compiled losses equal: {r.losses_equal}, "
          f"gradients equal: {r.grads_equal}")
    print(f"cache: {r.hits} hits, {r.misses} misses (traces), hit rate {r.hits / (r.hits + r.misses):.1%}")
    print(f"per step after warm-up: uncompiled {r.eager_step_ms:.2f} ms, compiled {r.compiled_step_ms:.2f} ms "
          f"({r.eager_step_ms / r.compiled_step_ms:.1f}x)")
    saved = r.eager_step_ms - r.compiled_step_ms
    print(f"trace + compile per miss: {r.compile_ms_per_miss:.0f} ms, "
          f"repaid after {r.compile_ms_per_miss / saved:.0f} steps of that length" if saved > 0 else
          f"trace + compile per miss: {r.compile_ms_per_miss:.0f} ms, never repaid")


if __name__ == "__main__":
    main()
