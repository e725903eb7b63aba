"""The microgpt workload: one training step of ``demos/microgpt.py``'s GPT on several engines.

A step is a forward and backward pass on one name: the mean cross-entropy of
its positions, then the gradient of every one of the 4,192 weights.  The
same model code (``demos/microgpt.py``'s :class:`GPT`) runs on

``microgrannd``       microgrannd's Values, the model's parts recorded as composites (``mg.scope``);
``microgrannd-flat``  microgrannd's Values without composites (``nullcontext``): what the scopes cost;
``closure-free``      :mod:`benchmarks.closure_free`, microgpt-style nodes with local gradients stored
                      at forward time;
``torch``             PyTorch, float64 tensors, the same math written with matrices (when ``import torch``
                      works).

Every engine starts from the same weights (``init_weights(cfg, vocab, seed)``).
:func:`check_agreement` compares the loss and every gradient with
microgrannd's (relative 1e-9) and :func:`main` refuses to time engines that
disagree.  The API for a runner::

    step = make_step("closure-free", seed=0, doc="olivia")
    loss = step()                  # one forward + backward; step.gradients() reads the weights' grads
    check_agreement([make_step(e) for e in available_engines()])

Run ``python benchmarks/microgpt_workload.py`` for ms/step per engine, the
ratios, the nodes per step and microgrannd's time split into building,
backward and freeing the graph.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a clone without installing
    sys.path.insert(0, str(ROOT))

import microgrannd as mg  # noqa: E402
from microgrannd import demo_runner  # noqa: E402

ENGINES = ("microgrannd", "microgrannd-flat", "closure-free", "torch")
REL_TOL = 1e-9  # the loss and every gradient must match microgrannd's to this
ABS_TOL = 1e-12  # for gradients that are (nearly) zero
DEFAULT_DOC = "olivia"  # six letters, seven positions: the length of an average name of the data


class AgreementError(AssertionError):
    """Two engines computed different losses or gradients for the same step."""


@cache
def gpt_module() -> Any:
    """``demos/microgpt.py`` as a module."""
    return demo_runner.load(ROOT / "demos" / "microgpt.py")


@dataclass
class Step:
    """One engine's training step, ready to run.

    Calling it runs forward and backward on the name once (the weights'
    gradients are zeroed first) and returns the loss; :meth:`gradients` then
    reads the weights' gradients in the order of :func:`init_weights`.
    ``phases()`` does the same but returns the seconds spent building the
    graph, in backward and freeing it; ``nodes()`` counts the nodes of the
    graph of one step (None for torch).
    """

    engine: str
    run: Callable[[], float]
    gradients: Callable[[], list[float]]
    phases: Callable[[], tuple[float, float, float]]
    nodes: Callable[[], int | None]

    def __call__(self) -> float:
        return self.run()


def closure_free_value() -> type:
    """The closure-free engine's ``Value`` class."""
    from benchmarks.closure_free import Value

    return Value


def available_engines() -> list[str]:
    """The engines of :data:`ENGINES` that can run here (torch only if it imports)."""
    return [e for e in ENGINES if e != "torch" or _torch() is not None]


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _setup(seed: int, doc: str) -> tuple[Any, Any, Any, list[int]]:
    g = gpt_module()
    vocab = g.Vocab.of(g.load_names())
    if any(c not in vocab.chars for c in doc) or not doc:
        raise ValueError(f"the name {doc!r} must be non-empty and use only the characters {vocab.chars!r}")
    cfg = g.Config()
    return g, cfg, g.init_weights(cfg, vocab.size, seed), vocab.encode(doc)


def make_step(engine: str, seed: int = 0, doc: str = DEFAULT_DOC) -> Step:
    """A :class:`Step` of ``engine`` (one of :data:`ENGINES`) on the name ``doc``, weights drawn with ``seed``."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    g, cfg, weights, tokens = _setup(seed, doc)
    if engine == "torch":
        return _torch_step(weights, cfg, tokens)
    if engine == "closure-free":
        model = g.GPT.build(weights, cfg, closure_free_value(), g.no_scope)
        count: Callable[[Any], int] = _count_closure_free
    else:
        model = g.GPT.build(weights, cfg, mg.Value, mg.scope if engine == "microgrannd" else g.no_scope)
        count = lambda root: len(mg.toposort(root))
    params = model.parameters()

    def zero() -> None:
        for p in params:
            p.grad = 0.0

    def run() -> float:
        zero()
        loss = model.loss(tokens)
        loss.backward()
        return float(loss.data)

    def phases() -> tuple[float, float, float]:
        zero()
        t0 = time.process_time()
        loss = model.loss(tokens)
        t1 = time.process_time()
        loss.backward()
        t2 = time.process_time()
        del loss
        t3 = time.process_time()
        return t1 - t0, t2 - t1, t3 - t2

    return Step(engine, run, lambda: [float(p.grad) for p in params], phases, lambda: count(model.loss(tokens)))


def _count_closure_free(root: Any) -> int:
    seen = {id(root)}
    stack = [root]
    while stack:
        for c in stack.pop()._children:
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return len(seen)


def torch_loss(torch: Any, p: dict[str, Any], cfg: Any, tokens: Sequence[int]) -> Any:
    """The GPT's mean loss on ``tokens`` with tensors: all positions at once, under a causal mask."""
    n = min(cfg.block_size, len(tokens) - 1)
    inputs = torch.tensor(tokens[:n])
    targets = torch.tensor(tokens[1 : n + 1])
    hd = cfg.head_dim

    def rmsnorm(x: Any) -> Any:
        return x * ((x * x).mean(dim=-1, keepdim=True) + 1e-5) ** -0.5

    future = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    x = rmsnorm(p["wte"][inputs] + p["wpe"][:n])
    for i in range(cfg.n_layer):
        h = rmsnorm(x)
        q, k, v = (h @ p[f"layer{i}.{w}"].T for w in ("wq", "wk", "wv"))
        q, k, v = (t.view(n, cfg.n_head, hd).transpose(0, 1) for t in (q, k, v))
        att = torch.softmax((q @ k.transpose(-1, -2) * hd**-0.5).masked_fill(future, -math.inf), dim=-1)
        x = x + (att @ v).transpose(0, 1).reshape(n, cfg.n_embd) @ p[f"layer{i}.wo"].T
        x = x + torch.relu(rmsnorm(x) @ p[f"layer{i}.fc1"].T) @ p[f"layer{i}.fc2"].T
    return torch.nn.functional.cross_entropy(x @ p["lm_head"].T, targets)


def _torch_step(weights: dict[str, list[list[float]]], cfg: Any, tokens: list[int]) -> Step:
    torch = _torch()
    if torch is None:
        raise RuntimeError("the torch engine needs PyTorch: pip install torch")
    torch.set_num_threads(1)  # CPU time of one thread, as the scalar engines use
    p = {k: torch.tensor(m, dtype=torch.float64, requires_grad=True) for k, m in weights.items()}

    def run() -> float:
        for t in p.values():
            t.grad = None
        loss = torch_loss(torch, p, cfg, tokens)
        loss.backward()
        return float(loss.item())

    def phases() -> tuple[float, float, float]:
        for t in p.values():
            t.grad = None
        t0 = time.process_time()
        loss = torch_loss(torch, p, cfg, tokens)
        t1 = time.process_time()
        loss.backward()
        t2 = time.process_time()
        del loss
        return t1 - t0, t2 - t1, time.process_time() - t2

    def gradients() -> list[float]:
        return [float(x) for t in p.values() for x in t.grad.flatten().tolist()]

    return Step("torch", run, gradients, phases, lambda: None)


def check_agreement(steps: Sequence[Step], rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> float:
    """Run each step once and check its loss and gradients against the first's; return the loss.

    Raises :class:`AgreementError` naming the engine, the quantity and both
    numbers at the first disagreement.
    """
    if not steps:
        raise ValueError("check_agreement needs at least one step")
    ref = steps[0]
    want_loss, want = ref(), ref.gradients()
    if not all(map(math.isfinite, [want_loss, *want])):
        raise AgreementError(f"{ref.engine}: the loss or a gradient is not finite")
    for s in steps[1:]:
        got_loss, got = s(), s.gradients()
        if not math.isclose(got_loss, want_loss, rel_tol=rel_tol, abs_tol=abs_tol):
            raise AgreementError(f"{s.engine}: loss {got_loss!r}, {ref.engine}: {want_loss!r}")
        if len(got) != len(want):
            raise AgreementError(f"{s.engine}: {len(got)} gradients, {ref.engine}: {len(want)}")
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            if not math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol):
                raise AgreementError(f"{s.engine}: gradient {i} is {a!r}, {ref.engine}: {b!r}")
    return want_loss


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
"""``cpu``: the process's own CPU time (steadier on a busy machine); ``wall``: elapsed time."""


def measure(steps: Sequence[Step], repeats: int, per_repeat: int, pause_gc: bool = True,
            clock: str = "cpu") -> dict[str, list[float]]:
    """Seconds per step of each engine: ``repeats`` rounds, engines interleaved, each timing ``per_repeat`` steps.

    The collector runs (untimed) before each engine's block, so one engine's
    garbage is not charged to the next.
    """
    now = CLOCKS[clock]
    times: dict[str, list[float]] = {s.engine: [] for s in steps}
    for _ in range(repeats):
        for s in steps:
            gc.collect()
            with mg.gc_paused() if pause_gc else nullcontext():
                start = now()
                for _ in range(per_repeat):
                    s()
                times[s.engine].append((now() - start) / per_repeat)
    return times


def main(argv: list[str] | None = None) -> int:
    """Check that the engines agree, then time them and print ms/step, ratios and nodes per step."""
    ap = argparse.ArgumentParser(prog="benchmarks/microgpt_workload.py", description=__doc__.splitlines()[0])
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=None, help="default: every available one")
    ap.add_argument("--repeats", type=int, default=5, help="rounds over the engines (default %(default)s)")
    ap.add_argument("--steps", type=int, default=3, help="steps timed per engine per round (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--doc", default=DEFAULT_DOC, help="the name trained on (default %(default)s)")
    ap.add_argument("--gc", action="store_true", help="leave the cyclic garbage collector on while timing")
    ap.add_argument("--clock", choices=CLOCKS, default="cpu", help="cpu (default) or wall time")
    args = ap.parse_args(argv)
    engines = args.engines or available_engines()
    steps = [make_step(e, args.seed, args.doc) for e in engines]
    loss = check_agreement(steps)
    print(f"microgpt step on {args.doc!r}: loss {loss:.12f}, the same loss and {len(steps[0].gradients())} "
          f"gradients (relative {REL_TOL:g}) on {', '.join(engines)}")
    times = measure(steps, args.repeats, args.steps, pause_gc=not args.gc, clock=args.clock)
    best = {e: min(t) for e, t in times.items()}
    print(f"\n{args.clock} time, garbage collector {'on' if args.gc else 'paused'}; best of {args.repeats} rounds "
          f"(median in brackets), {args.steps} steps per round; then one step split into its phases")
    print(f"{'engine':<18}{'ms/step':>16}{'nodes':>8}{'ns/node':>9}  {'build':>7}{'backward':>9}{'free':>7}  (ms)")
    for s in steps:
        n = s.nodes()
        with mg.gc_paused() if not args.gc else nullcontext():
            build, backward, free = (min(ph) for ph in zip(*(s.phases() for _ in range(3)), strict=True))
        per_node = f"{1e9 * best[s.engine] / n:9.0f}" if n else " " * 9
        print(f"{s.engine:<18}{1e3 * best[s.engine]:7.1f} ({1e3 * statistics.median(times[s.engine]):6.1f})"
              f"{n or '':>8}{per_node}  {1e3 * build:7.1f}{1e3 * backward:9.1f}{1e3 * free:7.1f}")
    ref = "microgrannd"
    if ref in best:
        print()
        for e in best:
            if e != ref:
                print(f"{e} / {ref}: {best[e] / best[ref]:.2f}x the time of {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
