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
``floor``         the same arithmetic on plain floats with a hand-written backward (:func:`floor_gpt`);
``compiled``      the demo's loss of one name compiled by ``mg.compile`` (``compile_loss``: the weights as
                  one flat list, the token ids as data through ``mg.gather``, a trace per name length),
                  generated code; ``compiled-tape`` the same on the flat tape.

micrograd takes no part: its ``Value`` has no ``log`` or ``exp``.  The
loss and every gradient are checked against the floor's before a time
counts.  Each sample is split into building the graph, backward and freeing
it; a graph engine's row also gives the number of nodes of one step.  A
compiled row times the call of the compiled loss alone (forward and backward
on floats); its compilation (one name length's trace) is timed apart, and the
row says how many name lengths the names list has: how many compilations a
run over every name needs.
"""

from __future__ import annotations

import gc
import json
import math
import random
from collections.abc import Sequence
from functools import cache, partial
from pathlib import Path
from typing import Any

import microgrannd as mg
from benchmarks.engines import Engine, TorchEngine
from benchmarks.measure import (
    Builder,
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
# The compiled step


class CompiledGpt:
    """The step compiled: the demo's ``compile_loss``, traced once for the name's length, replayed on floats.

    It is traced (untimed, reported by :meth:`extra`) at other weights and on
    another name of the same length than the ones it runs on, so a compiled
    function that froze the traced numbers or token ids fails the check
    against the floor.
    """

    method = "codegen"

    def __init__(self, p: Params) -> None:
        g, cfg, weights, tokens = setup(p)
        names = g.load_names()
        vocab = g.Vocab.of(names)
        self.tokens = tokens[: cfg.block_size + 1]  # all the loss reads
        self.flat = g.flatten(weights)
        rng = random.Random(1)
        self.trace_flat = [x + rng.gauss(0.0, 0.05) for x in self.flat]
        self.trace_tokens = [vocab.bos, *((t + 1) % len(vocab.chars) for t in self.tokens[1:-1]), vocab.bos]
        self.lengths = len({min(len(name) + 2, cfg.block_size + 1) for name in names})
        gc.collect()
        t0 = now()
        self.compiled: Any = g.compile_loss(cfg, weights, self.method)
        self.compiled(self.trace_flat, self.trace_tokens)
        self.compile_seconds = (now() - t0) / 1e9

    def run(self) -> tuple[float, list[float]]:
        """The compiled loss and gradients on the workload's weights and name."""
        loss, grads = self.compiled(self.flat, self.tokens)
        return loss, grads

    def step(self) -> StepOut:
        """One call of the compiled loss (forward and backward on floats), timed."""
        t0 = now()
        loss, grads = self.run()
        t1 = now()
        seconds = (t1 - t0) / 1e9
        return seconds, {"fwd+bwd": seconds}, {"loss": loss, "grads": list(grads)}

    def extra(self) -> dict[str, Any]:
        """The compilation (seconds, method, nodes) and the names list's number of name lengths."""
        c = self.compiled
        return {"compile_seconds": self.compile_seconds, "trace_seconds": c.trace_seconds, "method": c.method,
                "nodes": c.num_nodes, "lengths": self.lengths}


class CompiledTapeGpt(CompiledGpt):
    """The step compiled to a flat tape run by a tight loop (compiles faster, runs slower)."""

    method = "tape"


def compiled_builder(cls: type[CompiledGpt]) -> Builder:
    """A compiled engine's builder: one compiled step per parameters, kept for the worker's life."""
    runners: dict[str, CompiledGpt] = {}

    def build(p: Params) -> Sampler:
        key = json.dumps(p, sort_keys=True)
        if key not in runners:
            runners[key] = cls(p)
        return runners[key]

    return build


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
        "matrices; micrograd cannot (no log, exp); compiled and compiled-tape: the loss compiled once for "
        "the name's length, its compilation reported apart",
        reference=reference,
        graph=graph_sampler,
        floor=floor_sampler,
        # each in a worker of its own, as for mlp_step: the traced graph stays alive
        only={"compiled": compiled_builder(CompiledGpt), "compiled-tape": compiled_builder(CompiledTapeGpt)},
        unable={"micrograd": "micrograd's Value has no log or exp"},
        cases=cases,
    )

