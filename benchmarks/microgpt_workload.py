"""The ``microgpt_step`` workload: one training step of ``demos/microgpt.py``'s GPT.

A step is a forward and backward pass on one name: the mean cross-entropy of
its positions, then the gradient of every weight (4,192 of them at the
demo's size).  Every engine starts from the same weights
(``init_weights(cfg, vocab, seed)``) and runs

``microgrannd``   the demo's model code on microgrannd's Values, its parts recorded as composites
                  (``mg.scope``);
``closure-free``  the same code on :mod:`benchmarks.closure_free` (microgpt-style nodes that store
                  their local derivatives at forward time), nothing recorded;
``torch``         PyTorch on float64 tensors: the same math written with matrices and a causal mask;
``floor``         the same arithmetic on plain floats with a hand-written backward (:func:`floor_gpt`).

micrograd takes no part: its ``Value`` has no ``log`` or ``exp``.  The
loss and every gradient are checked against the floor's before a time
counts.  Each sample is split into building the graph, backward and freeing
it; a graph engine's row also gives the number of nodes of one step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache, partial
from pathlib import Path
from typing import Any

import microgrannd as mg
from benchmarks.engines import Engine, TorchEngine
from benchmarks.measure import (
    Case,
    Config,
    FnSampler,
    Params,
    Sampler,
    StepOut,
    Workload,
    graph_phases,
    now,
    timed_graph,
)
from microgrannd import demo_runner

ROOT = Path(__file__).resolve().parent.parent  # the checkout, where demos/ is

FULL = {"doc": "olivia", "seed": 0, "n_layer": 1, "n_embd": 16, "n_head": 4, "block_size": 16}
"""The demo's model on a name of average length (six letters, seven positions)."""
QUICK = {**FULL, "doc": "ada", "n_embd": 8, "n_head": 2}
"""``--quick``: half as wide, on a shorter name."""
NODE_INPUTS = {"microgrannd": "parents", "closure-free": "_children"}
"""The field holding a node's inputs, by engine: how a row counts the nodes of a step."""


@cache
def gpt_module() -> Any:
    """``demos/microgpt.py`` as a module."""
    return demo_runner.load(ROOT / "demos" / "microgpt.py")


def setup(p: Params) -> tuple[Any, Any, dict[str, list[list[float]]], list[int]]:
    """The demo module, the model's Config, its initial weights and the tokens of the name ``p["doc"]``."""
    g = gpt_module()
    vocab = g.Vocab.of(g.load_names())
    doc = p["doc"]
    if not doc or any(c not in vocab.chars for c in doc):
        raise ValueError(f"the name {doc!r} must be non-empty and use only the characters {vocab.chars!r}")
    cfg = g.Config(n_layer=p["n_layer"], n_embd=p["n_embd"], n_head=p["n_head"], block_size=p["block_size"])
    return g, cfg, g.init_weights(cfg, vocab.size, p["seed"]), vocab.encode(doc)


def count_nodes(root: Any, inputs: str) -> int:
    """The nodes ``root`` depends on (itself included), following the field ``inputs`` of each node."""
    seen = {id(root)}
    stack = [root]
    while stack:
        for c in getattr(stack.pop(), inputs):
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return len(seen)


# --------------------------------------------------------------------------
# The graph engines


class ScalarGpt:
    """The step on a scalar engine: the demo's model with the engine's leaves as weights."""

    def __init__(self, engine: Engine, p: Params) -> None:
        g, cfg, weights, self.tokens = setup(p)
        scope = mg.scope if engine.name == "microgrannd" else g.no_scope
        self.engine = engine
        self.model = g.GPT.build(weights, cfg, engine.leaf, scope)
        self.params = self.model.parameters()

    def step(self) -> StepOut:
        """Zero the gradients (untimed), then build the loss, backward and free the graph (timed)."""
        self.engine.zero_grad(self.params)
        loss, ns = timed_graph(self.engine, partial(self.model.loss, self.tokens))
        return (*graph_phases(ns), {"loss": loss, "grads": [self.engine.grad(w) for w in self.params]})

    def extra(self) -> dict[str, Any]:
        """The number of nodes of one step's graph (leaves and constants included)."""
        inputs = NODE_INPUTS.get(self.engine.name)
        return {} if inputs is None else {"nodes": count_nodes(self.model.loss(self.tokens), inputs)}


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


class TorchGpt:
    """The step on PyTorch: one float64 tensor per weight matrix, :func:`torch_loss`."""

    def __init__(self, engine: TorchEngine, p: Params) -> None:
        _, self.cfg, weights, self.tokens = setup(p)
        self.engine = engine
        self.weights = {k: engine.torch.tensor(m, dtype=engine.torch.float64, requires_grad=True)
                        for k, m in weights.items()}

    def step(self) -> StepOut:
        """Zero the gradients (untimed), then build the loss, backward and free the graph (timed)."""
        params = list(self.weights.values())
        self.engine.zero_grad(params)
        torch = self.engine.torch
        loss, ns = timed_graph(self.engine, partial(torch_loss, torch, self.weights, self.cfg, self.tokens))
        return (*graph_phases(ns), {"loss": loss, "grads": [x for t in params for x in t.grad.flatten().tolist()]})

    def extra(self) -> dict[str, Any]:
        """Nothing beside the times."""
        return {}


def graph_sampler(engine: Engine, p: Params) -> Sampler:
    """Engine ``engine``'s step: tensors for PyTorch, the demo's scalar model for the others."""
    return TorchGpt(engine, p) if isinstance(engine, TorchEngine) else ScalarGpt(engine, p)


# --------------------------------------------------------------------------
# The floor: plain floats, a hand-written backward


Vec = list[float]
Mat = list[list[float]]


def dot_f(a: Sequence[float], b: Sequence[float]) -> float:
    """``sum(a * b)``."""
    return sum(x * y for x, y in zip(a, b, strict=True))


def linear_f(x: Vec, w: Sequence[Vec]) -> Vec:
    """``w @ x``."""
    return [dot_f(row, x) for row in w]


def linear_back(x: Vec, w: Sequence[Vec], dy: Vec, dw: Sequence[Vec], dx: Vec) -> None:
    """Add the gradients of ``y = w @ x`` into ``dw`` and ``dx``, given ``dy``."""
    for row, grow, g in zip(w, dw, dy, strict=True):
        if g:
            for c, xc in enumerate(x):
                grow[c] += g * xc
                dx[c] += g * row[c]


def rmsnorm_f(x: Vec) -> tuple[Vec, float]:
    """``x * s`` and the scale ``s = (mean(x²) + 1e-5) ** -0.5``."""
    s = (dot_f(x, x) / len(x) + 1e-5) ** -0.5
    return [xi * s for xi in x], s


def rmsnorm_back(x: Vec, s: float, dy: Vec, dx: Vec) -> None:
    """Add the gradient of :func:`rmsnorm_f` into ``dx``, given ``dy``."""
    k = -dot_f(dy, x) * s**3 / len(x)  # d/dx_i of s is -s³ x_i / n
    for i, xi in enumerate(x):
        dx[i] += dy[i] * s + k * xi


def softmax_f(v: Vec) -> Vec:
    """``exp(v - max) / sum``."""
    m = max(v)
    es = [math.exp(x - m) for x in v]
    total = sum(es)
    return [e / total for e in es]


def softmax_back(a: Vec, da: Vec) -> Vec:
    """The gradient of the softmax's input, given its output ``a`` and the output's gradient ``da``."""
    mean = dot_f(a, da)
    return [ai * (g - mean) for ai, g in zip(a, da, strict=True)]


def floor_gpt(weights: dict[str, Mat], cfg: Any, tokens: Sequence[int]) -> StepOut:
    """The step on floats: forward position by position (with key/value caches), then backward in reverse.

    Returns (seconds, {build, backward}, {loss, grads}), the gradients in the
    order of the model's ``parameters()``.
    """
    t0 = now()
    d, hd, nh, nl = cfg.n_embd, cfg.head_dim, cfg.n_head, cfg.n_layer
    scale = hd**-0.5
    n = min(cfg.block_size, len(tokens) - 1)
    heads = [slice(h * hd, (h + 1) * hd) for h in range(nh)]  # each head's rows of wq, wk, wv
    w = weights
    keys: list[list[list[Vec]]] = [[[] for _ in range(nh)] for _ in range(nl)]
    values: list[list[list[Vec]]] = [[[] for _ in range(nh)] for _ in range(nl)]
    tape = []
    loss = 0.0
    for pos in range(n):
        e = [a + b for a, b in zip(w["wte"][tokens[pos]], w["wpe"][pos], strict=True)]
        x, s0 = rmsnorm_f(e)
        layers = []
        for i in range(nl):
            h, s1 = rmsnorm_f(x)
            attn, cat = [], []
            for hi, rows in enumerate(heads):
                q = linear_f(h, w[f"layer{i}.wq"][rows])
                keys[i][hi].append(linear_f(h, w[f"layer{i}.wk"][rows]))
                values[i][hi].append(linear_f(h, w[f"layer{i}.wv"][rows]))
                a = softmax_f([dot_f(q, k) * scale for k in keys[i][hi]])
                cat += [dot_f(a, [v[j] for v in values[i][hi]]) for j in range(hd)]
                attn.append((q, a))
            x1 = [u + r for u, r in zip(linear_f(cat, w[f"layer{i}.wo"]), x, strict=True)]
            h2, s2 = rmsnorm_f(x1)
            z = linear_f(h2, w[f"layer{i}.fc1"])
            r = [zi if zi > 0 else 0.0 for zi in z]
            layers.append((x, h, s1, attn, cat, x1, h2, s2, z, r))
            x = [m + u for m, u in zip(linear_f(r, w[f"layer{i}.fc2"]), x1, strict=True)]
        probs = softmax_f(linear_f(x, w["lm_head"]))
        loss -= math.log(probs[tokens[pos + 1]])
        tape.append((e, s0, layers, x, probs))
    loss /= n
    t1 = now()
    grads = {k: [[0.0] * len(m[0]) for _ in m] for k, m in w.items()}
    dkeys = [[[[0.0] * hd for _ in range(n)] for _ in range(nh)] for _ in range(nl)]
    dvalues = [[[[0.0] * hd for _ in range(n)] for _ in range(nh)] for _ in range(nl)]
    for pos in reversed(range(n)):
        e, s0, layers, xf, probs = tape[pos]
        dlogits = [pr / n for pr in probs]
        dlogits[tokens[pos + 1]] -= 1.0 / n
        dx = [0.0] * d
        linear_back(xf, w["lm_head"], dlogits, grads["lm_head"], dx)
        for i in reversed(range(nl)):
            x, h, s1, attn, cat, x1, h2, s2, z, r = layers[i]
            dx1, dr, dh2 = list(dx), [0.0] * len(r), [0.0] * d
            linear_back(r, w[f"layer{i}.fc2"], dx, grads[f"layer{i}.fc2"], dr)
            dz = [g if zi > 0 else 0.0 for g, zi in zip(dr, z, strict=True)]
            linear_back(h2, w[f"layer{i}.fc1"], dz, grads[f"layer{i}.fc1"], dh2)
            rmsnorm_back(x1, s2, dh2, dx1)
            dx, dcat, dh = list(dx1), [0.0] * d, [0.0] * d
            linear_back(cat, w[f"layer{i}.wo"], dx1, grads[f"layer{i}.wo"], dcat)
            for hi, rows in enumerate(heads):
                q, a = attn[hi]
                dout = dcat[rows]
                ks, vs, dks, dvs = keys[i][hi], values[i][hi], dkeys[i][hi], dvalues[i][hi]
                for j in range(pos + 1):
                    for c in range(hd):
                        dvs[j][c] += a[j] * dout[c]
                dscores = softmax_back(a, [dot_f(dout, vs[j]) for j in range(pos + 1)])
                dq = [0.0] * hd
                for j, g in enumerate(dscores):
                    for c in range(hd):
                        dq[c] += g * scale * ks[j][c]
                        dks[j][c] += g * scale * q[c]
                for name, dy in (("wq", dq), ("wk", dks[pos]), ("wv", dvs[pos])):
                    linear_back(h, w[f"layer{i}.{name}"][rows], dy, grads[f"layer{i}.{name}"][rows], dh)
            rmsnorm_back(x, s1, dh, dx)
        de = [0.0] * d
        rmsnorm_back(e, s0, dx, de)
        for c, g in enumerate(de):
            grads["wte"][tokens[pos]][c] += g
            grads["wpe"][pos][c] += g
    t2 = now()
    phases = {"build": (t1 - t0) / 1e9, "backward": (t2 - t1) / 1e9}
    flat = [g for m in grads.values() for row in m for g in row]
    return sum(phases.values()), phases, {"loss": loss, "grads": flat}


def floor_sampler(p: Params) -> Sampler:
    """The floor's step for ``p``."""
    _, cfg, weights, tokens = setup(p)
    return FnSampler(partial(floor_gpt, weights, cfg, tokens))


@cache
def _reference(key: str) -> dict[str, Any]:
    _, cfg, weights, tokens = setup(json.loads(key))
    return floor_gpt(weights, cfg, tokens)[2]


def reference(p: Params) -> dict[str, Any]:
    """The loss and every gradient every engine must reproduce: the floor's (computed once per ``p``)."""
    return _reference(json.dumps(p, sort_keys=True))


# --------------------------------------------------------------------------
# The workload


def cases(config: Config) -> list[Case]:
    """One row per collector mode: the demo's model, or a smaller one with ``--quick``."""
    return [Case("microgpt_step", QUICK if config.quick else FULL, repeats=config.blocks, warmup=1,
                 samples=config.steps)]


def microgpt_step() -> Workload:
    """The workload, for :data:`benchmarks.workloads.EXTRA`."""
    return Workload(
        "microgpt_step",
        "one training step of demos/microgpt.py's scalar GPT (1 layer, 4 heads of 4, 4,192 weights; --quick: "
        "2 heads of 4) on one name: the mean cross-entropy, backward, freeing; torch runs the same math with "
        "matrices; micrograd cannot (no log, exp)",
        reference=reference,
        graph=graph_sampler,
        floor=floor_sampler,
        unable={"micrograd": "micrograd's Value has no log or exp"},
        cases=cases,
    )

