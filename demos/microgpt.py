"""microGPT: a one-layer GPT built from scalar Values, trained on first names, then inventing new ones.

A transformer written with nothing but the scalar operations ``+ * ** log exp
relu``: token and position embeddings, RMSNorm, causal multi-head attention
that takes one token at a time with a cache of keys and values, residual
connections, a ReLU MLP four times as wide, a language-model head, softmax and
cross-entropy.  Each step trains on one name (the loss averaged over its
positions) with Adam and a linearly decaying learning rate; at the end the
model samples new names at temperature 0.5.  The same token marks the start
and the end of a name.

The model is engine-agnostic: it touches its numbers only through Python's
operators, the methods ``log``, ``exp`` and ``relu``, and the ``data`` and
``grad`` fields, and it names its parts (rmsnorm, softmax, each attention
head, the MLP, ...) through a ``scope(name)`` context factory: microgrannd's
``mg.scope`` records them as composite calls, which the drawing can collapse;
``contextlib.nullcontext`` serves any other engine
(``benchmarks/microgpt_workload.py`` runs this very code on a closure-free
engine).  Token ids pick rows through ``select`` and the softmax's shift is
``shift``: plain indexing and a number read from ``.data`` by default;
``mg.gather`` and a recorded maximum when the loss is compiled.

``--compile`` trains with the loss of one name compiled by ``mg.compile``
as a function of the weights (one flat list of numbers) and the token ids
(numbers: data, picked with ``mg.gather``): one trace per name length, Adam
applied to the floats it returns; the losses are uncompiled training's to
rounding.

Run::

    python demos/microgpt.py                 # 200 steps, under a minute
    python demos/microgpt.py --full          # 1,000 steps
    python demos/microgpt.py --steps 20      # a quick check
    python demos/microgpt.py --compile       # the loss compiled to a tape (codegen: slower to compile, faster to run)
    python demos/microgpt.py --draw pos.svg  # one position's graph, parts collapsed
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from _demolib import Progress, parser

import microgrannd as mg

DESCRIPTION = __doc__.splitlines()[0]
NAMES = Path(__file__).resolve().parent / "data" / "names.txt"
DEFAULT_STEPS = 200
FULL_STEPS = 1000
COLLAPSE = ("embedding", "rmsnorm", "attention head", "projection", "mlp", "lm head", "softmax")
"""The composites of the model: the drawing collapses each call of these to one node."""

Scope = Callable[[str], AbstractContextManager[Any]]
"""A context factory naming a part of the model: ``mg.scope`` or ``lambda name: nullcontext()``."""
Select = Callable[[Sequence[Any], Any], Any]
"""``select(rows, token)``: the entry (or row) of ``rows`` a token id picks: plain indexing or ``mg.gather``."""
Shift = Callable[[Sequence[Any]], Any]
"""``shift(logits)``: what the softmax subtracts from the logits to keep ``exp`` from overflowing."""


def no_scope(name: str) -> AbstractContextManager[Any]:
    """The scope factory for engines without composites: it records nothing."""
    return contextlib.nullcontext()


def index(rows: Sequence[Any], token: Any) -> Any:
    """``rows[token]``: the selection of every engine, for token ids that are plain ints."""
    return rows[token]


def largest(logits: Sequence[Any]) -> float:
    """The largest logit's number (read from ``.data``: a constant of the graph, not a node)."""
    return max(v.data for v in logits)


def recorded_largest(logits: Sequence[Any]) -> Any:
    """The largest logit (to rounding) as recorded nodes no gradient flows through, for tracing.

    A traced function may not read a number to steer Python (``.data``), so
    the compiled loss builds the maximum as ``m + relu(x - m)`` over the
    logits, under ``mg.stop_gradient``: the compiled code finds it anew at
    every call.  The softmax does not depend on it, only its rounding does.
    """
    m = logits[0]
    for x in logits[1:]:
        m = m + (x - m).relu()
    return mg.stop_gradient(m)


# --------------------------------------------------------------------------
# Data


def load_names(path: Path = NAMES) -> list[str]:
    """The names of ``path``, one per line, blank lines skipped."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class Vocab:
    """Characters as token ids: the sorted characters, then BOS (start and end of a name)."""

    chars: str

    @classmethod
    def of(cls, docs: Sequence[str]) -> Vocab:
        """The vocabulary of the characters used in ``docs``."""
        return cls("".join(sorted(set("".join(docs)))))

    @property
    def bos(self) -> int:
        """The token that starts and ends every name."""
        return len(self.chars)

    @property
    def size(self) -> int:
        """How many tokens there are (characters and BOS)."""
        return len(self.chars) + 1

    def encode(self, doc: str) -> list[int]:
        """``[BOS, c1, ..., cn, BOS]`` as token ids."""
        return [self.bos, *(self.chars.index(c) for c in doc), self.bos]

    def decode(self, tokens: Sequence[int]) -> str:
        """The characters of ``tokens`` (BOS left out)."""
        return "".join(self.chars[t] for t in tokens if t != self.bos)


# --------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Config:
    """The model's size: microgpt's defaults are one layer, 4 heads of 4, 16 positions."""

    n_layer: int = 1
    n_embd: int = 16
    n_head: int = 4
    block_size: int = 16
    init_std: float = 0.08

    @property
    def head_dim(self) -> int:
        """The width of one attention head."""
        return self.n_embd // self.n_head


Weights = dict[str, list[list[float]]]
"""Every weight matrix by name, as rows of floats (a row per output)."""


def init_weights(cfg: Config, vocab_size: int, seed: int = 0) -> Weights:
    """Random initial weights (Gaussian, standard deviation ``cfg.init_std``), the same for every engine."""
    if cfg.n_embd % cfg.n_head:
        raise ValueError(f"n_embd ({cfg.n_embd}) must be a multiple of n_head ({cfg.n_head})")
    rng = random.Random(seed)

    def matrix(rows: int, cols: int) -> list[list[float]]:
        return [[rng.gauss(0.0, cfg.init_std) for _ in range(cols)] for _ in range(rows)]

    d = cfg.n_embd
    w = {"wte": matrix(vocab_size, d), "wpe": matrix(cfg.block_size, d)}
    for i in range(cfg.n_layer):
        for name in ("wq", "wk", "wv", "wo"):
            w[f"layer{i}.{name}"] = matrix(d, d)
        w[f"layer{i}.fc1"] = matrix(4 * d, d)
        w[f"layer{i}.fc2"] = matrix(d, 4 * d)
    w["lm_head"] = matrix(vocab_size, d)
    return w


def dot(ws: Sequence[Any], xs: Sequence[Any]) -> Any:
    """``sum(w * x)`` of two equal-length vectors, added left to right (no constant 0 at the start)."""
    acc = ws[0] * xs[0]
    for i in range(1, len(ws)):
        acc = acc + ws[i] * xs[i]
    return acc


def total(xs: Sequence[Any]) -> Any:
    """The sum of ``xs``, added left to right."""
    acc = xs[0]
    for x in xs[1:]:
        acc = acc + x
    return acc


def linear(x: Sequence[Any], w: Sequence[Sequence[Any]]) -> list[Any]:
    """The matrix-vector product ``w @ x`` (no bias)."""
    return [dot(row, x) for row in w]


class GPT:
    """microgpt's model on any scalar engine.

    ``params`` holds one value object per weight (made by the caller, so
    any engine's leaves will do), in the shapes of :func:`init_weights`;
    ``scope`` names the model's parts (see the module docstring).  Token ids
    pick a row of ``wte`` and a probability through ``select`` (plain
    indexing by default; ``mg.gather`` when the ids are traced inputs of a
    compiled function), and the softmax subtracts ``shift(logits)``
    (:func:`largest` by default, :func:`recorded_largest` when traced).
    """

    def __init__(self, params: dict[str, list[list[Any]]], cfg: Config, scope: Scope = no_scope,
                 select: Select = index, shift: Shift = largest) -> None:
        self.p = params
        self.cfg = cfg
        self.scope = scope
        self.select = select
        self.shift = shift

    @classmethod
    def build(cls, weights: Weights, cfg: Config, param: Callable[[float], Any], scope: Scope = no_scope) -> GPT:
        """A model whose leaves are ``param(w)`` for every weight ``w``."""
        return cls({k: [[param(x) for x in row] for row in m] for k, m in weights.items()}, cfg, scope)

    def parameters(self) -> list[Any]:
        """Every weight, matrix by matrix, row by row."""
        return [p for m in self.p.values() for row in m for p in row]

    # --- the parts, each recorded under a scope

    def rmsnorm(self, x: list[Any]) -> list[Any]:
        """``x / sqrt(mean(x²) + 1e-5)``."""
        with self.scope("rmsnorm"):
            scale = (dot(x, x) * (1.0 / len(x)) + 1e-5) ** -0.5
            return [xi * scale for xi in x]

    def softmax(self, logits: list[Any]) -> list[Any]:
        """``exp(l - max) / sum``; the max (``shift``: by default a number, not a node) keeps ``exp`` finite."""
        with self.scope("softmax"):
            m = self.shift(logits)
            es = [(v - m).exp() for v in logits]
            inv = total(es) ** -1.0
            return [e * inv for e in es]

    def head(self, h: int, layer: int, x: list[Any], keys: list[list[Any]], values: list[list[Any]]) -> list[Any]:
        """Attention head ``h``: its query, key and value of ``x``, attending over the cached positions."""
        with self.scope("attention head"):
            rows = slice(h * self.cfg.head_dim, (h + 1) * self.cfg.head_dim)
            q = linear(x, self.p[f"layer{layer}.wq"][rows])
            keys.append(linear(x, self.p[f"layer{layer}.wk"][rows]))
            values.append(linear(x, self.p[f"layer{layer}.wv"][rows]))
            scale = self.cfg.head_dim**-0.5
            att = self.softmax([dot(q, k) * scale for k in keys])
            return [dot(att, [v[j] for v in values]) for j in range(self.cfg.head_dim)]

    def mlp(self, layer: int, x: list[Any]) -> list[Any]:
        """``fc2(relu(fc1(x)))``, four times as wide inside."""
        with self.scope("mlp"):
            hidden = [h.relu() for h in linear(x, self.p[f"layer{layer}.fc1"])]
            return linear(hidden, self.p[f"layer{layer}.fc2"])

    def logits(self, token: Any, pos: int, keys: list[list[list[Any]]], values: list[list[list[Any]]]) -> list[Any]:
        """The next token's logits after ``token`` at position ``pos``; appends to the key/value caches.

        ``keys[layer][head]`` and ``values[layer][head]`` are lists with one
        vector per earlier position.
        """
        with self.scope("embedding"):
            x = [t + p for t, p in zip(self.select(self.p["wte"], token), self.p["wpe"][pos], strict=True)]
        x = self.rmsnorm(x)
        for layer in range(self.cfg.n_layer):
            normed = self.rmsnorm(x)
            heads = [self.head(h, layer, normed, keys[layer][h], values[layer][h]) for h in range(self.cfg.n_head)]
            with self.scope("projection"):
                attended = linear([v for head in heads for v in head], self.p[f"layer{layer}.wo"])
            x = [a + r for a, r in zip(attended, x, strict=True)]
            x = [m + r for m, r in zip(self.mlp(layer, self.rmsnorm(x)), x, strict=True)]
        with self.scope("lm head"):
            return linear(x, self.p["lm_head"])

    def position_losses(self, tokens: Sequence[Any]) -> list[Any]:
        """The cross-entropy of each next token of ``tokens`` (at most ``block_size`` positions)."""
        cfg = self.cfg
        n = min(cfg.block_size, len(tokens) - 1)
        if n < 1:
            raise ValueError("a name needs at least two tokens (BOS ... BOS)")
        keys: list[list[list[Any]]] = [[[] for _ in range(cfg.n_head)] for _ in range(cfg.n_layer)]
        values: list[list[list[Any]]] = [[[] for _ in range(cfg.n_head)] for _ in range(cfg.n_layer)]
        losses = []
        for pos in range(n):
            probs = self.softmax(self.logits(tokens[pos], pos, keys, values))
            losses.append(-self.select(probs, tokens[pos + 1]).log())
        return losses

    def loss(self, tokens: Sequence[Any]) -> Any:
        """The mean cross-entropy over the positions of one name."""
        losses = self.position_losses(tokens)
        return total(losses) * (1.0 / len(losses))


# --------------------------------------------------------------------------
# Training and sampling


class Adam:
    """Adam's moments for ``n`` parameters, microgpt's settings."""

    def __init__(self, n: int, beta1: float = 0.85, beta2: float = 0.99, eps: float = 1e-8) -> None:
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [0.0] * n
        self.v = [0.0] * n
        self.t = 0

    def update(self, xs: list[float], grads: Sequence[float], lr: float) -> None:
        """Move every number of ``xs`` (in place) by Adam's bias-corrected step of size ``lr``."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        m, v = self.m, self.v
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1.0 - b1) * g
            v[i] = b2 * v[i] + (1.0 - b2) * g * g
            xs[i] -= lr * (m[i] / c1) / (math.sqrt(v[i] / c2) + self.eps)

    def step(self, params: Sequence[Any], lr: float) -> None:
        """:meth:`update` on any engine's leaves (it reads and writes ``data`` and ``grad``); zeroes the gradients."""
        xs = [p.data for p in params]
        self.update(xs, [p.grad for p in params], lr)
        for p, x in zip(params, xs, strict=True):
            p.data = x
            p.grad = 0.0


def schedule(k: int, steps: int, lr: float) -> float:
    """The learning rate at step ``k``: ``lr`` decaying linearly to 0."""
    return lr * (1.0 - k / steps)


def train(model: GPT, vocab: Vocab, docs: Sequence[str], steps: int, lr: float = 0.01,
          progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train on ``docs[k % len(docs)]`` at step ``k``, with lr decaying linearly to 0; the loss of each step."""
    params = model.parameters()
    opt = Adam(len(params))
    losses = []
    for k in range(steps):
        loss = model.loss(vocab.encode(docs[k % len(docs)]))
        loss.backward()
        opt.step(params, schedule(k, steps, lr))
        losses.append(loss.data)
        if progress is not None:
            progress(k + 1, loss.data)
    return losses


# --------------------------------------------------------------------------
# Compiled training: one trace per name length


def flatten(weights: Weights) -> list[float]:
    """Every weight as one list, in the order of :meth:`GPT.parameters`."""
    return [x for m in weights.values() for row in m for x in row]


def unflatten(flat: Sequence[Any], like: Weights) -> dict[str, list[list[Any]]]:
    """``flat`` cut back into the matrices of ``like`` (the inverse of :func:`flatten`)."""
    out, k = {}, 0
    for name, m in like.items():
        cols = len(m[0])
        out[name] = [list(flat[k + r * cols : k + (r + 1) * cols]) for r in range(len(m))]
        k += len(m) * cols
    if k != len(flat):
        raise ValueError(f"{len(flat)} numbers for {k} weights")
    return out


def name_loss(cfg: Config, like: Weights, flat: Sequence[Any], tokens: Sequence[Any]) -> Any:
    """The mean loss of one name, the weights given as one flat list: the function compiled.

    Traced, ``flat`` and ``tokens`` are inputs: the token ids pick rows and
    probabilities with ``mg.gather`` (they are data), and only the number of
    tokens is structure, so one trace serves every name of that length.
    """
    return GPT(unflatten(flat, like), cfg, select=mg.gather, shift=recorded_largest).loss(tokens)


def compile_loss(cfg: Config, like: Weights, method: str = "auto") -> mg.Compiled:
    """:func:`name_loss` compiled (gradients of the weights alone), with room for a trace per name length.

    Call it as ``compiled(flat_weights, tokens)`` with at most ``cfg.block_size + 1`` tokens.
    """
    return mg.compile(partial(name_loss, cfg, like), argnums=0, method=method, cache_size=cfg.block_size)


def train_compiled(weights: Weights, cfg: Config, vocab: Vocab, docs: Sequence[str], steps: int,
                   method: str = "auto", lr: float = 0.01, progress: Callable[[int, float], None] | None = None
                   ) -> tuple[list[float], list[float], mg.Compiled]:
    """:func:`train` with the loss compiled: the trained weights (flat), the loss of each step, the compiled loss.

    Each step calls the compiled loss on the weights' numbers and the name's
    token ids (cut to ``block_size + 1``, all the loss reads, so that longer
    names share a trace) and applies Adam to the floats it returns: the same
    arithmetic as :func:`train`, so the same losses to rounding.
    """
    flat = flatten(weights)
    loss_fn = compile_loss(cfg, weights, method)
    opt = Adam(len(flat))
    losses = []
    for k in range(steps):
        loss, grads = loss_fn(flat, vocab.encode(docs[k % len(docs)])[: cfg.block_size + 1])
        opt.update(flat, grads, schedule(k, steps, lr))
        losses.append(loss)
        if progress is not None:
            progress(k + 1, loss)
    return flat, losses, loss_fn


def sample(model: GPT, vocab: Vocab, rng: random.Random, temperature: float = 0.5) -> str:
    """A new name: tokens drawn one at a time from ``softmax(logits / temperature)`` until BOS.

    Call it where the engine records no graph (``mg.no_grad()`` for microgrannd).
    """
    cfg = model.cfg
    keys: list[list[list[Any]]] = [[[] for _ in range(cfg.n_head)] for _ in range(cfg.n_layer)]
    values: list[list[list[Any]]] = [[[] for _ in range(cfg.n_head)] for _ in range(cfg.n_layer)]
    token, out = vocab.bos, []
    for pos in range(cfg.block_size):
        scaled = [v.data / temperature for v in model.logits(token, pos, keys, values)]
        top = max(scaled)
        token = rng.choices(range(vocab.size), weights=[math.exp(s - top) for s in scaled])[0]
        if token == vocab.bos:
            break
        out.append(token)
    return vocab.decode(out)


@dataclass
class Result:
    """What a run did: the loss of every step, the sampled names, the time taken (and the compiled loss)."""

    losses: list[float]
    samples: list[str]
    train_seconds: float
    vocab: Vocab
    model: GPT = field(repr=False)
    compiled: mg.Compiled | None = field(default=None, repr=False)


def run(steps: int, seed: int = 42, n_samples: int = 20, cfg: Config | None = None,
        docs: Sequence[str] | None = None, show_progress: bool = False, pause_gc: bool = True,
        compile_method: str | None = None) -> Result:
    """Train microgrannd's GPT for ``steps`` steps on the names (shuffled by ``seed``), then sample names.

    The whole run is deterministic given ``seed``.  ``pause_gc`` trains inside
    ``mg.gc_paused()`` (microgrannd's graphs hold no cycles, so the collector
    only costs time).  ``compile_method`` (``"tape"``, ``"codegen"`` or ``"auto"``)
    trains with the loss compiled (:func:`train_compiled`), a trace per name
    length; the time taken includes compiling.
    """
    cfg = cfg or Config()
    docs = list(load_names() if docs is None else docs)
    rng = random.Random(seed)
    rng.shuffle(docs)
    vocab = Vocab.of(docs)
    weights = init_weights(cfg, vocab.size, seed)
    compiled = None
    start = time.perf_counter()
    with Progress(steps, "training", enabled=show_progress) as bar, \
            mg.gc_paused() if pause_gc else contextlib.nullcontext():
        def shown(k: int, loss: float) -> None:
            bar.update(k, f"loss {loss:.4f}")

        if compile_method is None:
            model = GPT.build(weights, cfg, mg.Value, mg.scope)
            losses = train(model, vocab, docs, steps, progress=shown)
        else:
            flat, losses, compiled = train_compiled(weights, cfg, vocab, docs, steps, compile_method,
                                                    progress=shown)
            model = GPT.build(unflatten(flat, weights), cfg, mg.Value, mg.scope)
    seconds = time.perf_counter() - start
    with mg.no_grad():
        samples = [sample(model, vocab, rng) for _ in range(n_samples)]
    return Result(losses, samples, seconds, vocab, model, compiled)


# --------------------------------------------------------------------------
# Pictures


def position_graph(model: GPT, vocab: Vocab, doc: str, pos: int) -> mg.Value:
    """The loss at position ``pos`` of ``doc`` as a fresh graph of the model's current weights.

    The weights enter as unlabelled constants, so that each collapsed call
    hides the weights it uses (as leaves they would be thousands of boxes);
    the gradients are filled in by a backward pass.
    """
    weights = {k: [[p.data for p in row] for row in m] for k, m in model.p.items()}
    frozen = GPT.build(weights, model.cfg, lambda x: mg.Value(x, requires_grad=False), mg.scope)
    tokens = vocab.encode(doc)
    if not 0 <= pos < min(len(tokens) - 1, model.cfg.block_size):
        raise ValueError(f"position {pos} is outside the name {doc!r} (0 to {min(len(doc), model.cfg.block_size - 1)})")
    loss: mg.Value = frozen.position_losses(tokens[: pos + 2])[pos]
    loss.label = f"loss at {pos}"
    loss.backward()
    return loss


def write_drawing(root: mg.Value, path: Path) -> None:
    """Draw ``root`` with every part of the model collapsed to one node."""
    path.parent.mkdir(parents=True, exist_ok=True)
    drawing = mg.draw(root, collapse=COLLAPSE, max_nodes=1000)
    drawing.render(path)
    print(f"wrote {path} ({drawing.values} values, {drawing.ops} ops, {drawing.calls} collapsed calls)")


def write_explorer(root: mg.Value, path: Path) -> None:
    """Write ``mg.explore``'s page of ``root``, every part of the model collapsed to one node."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mg.explore(root, collapse=COLLAPSE, max_nodes=20_000).save(path)  # the weights enter as constants
    print(f"wrote {path}: open it in a browser to step through the position's backward pass")


# --------------------------------------------------------------------------


@contextlib.contextmanager
def _timed(label: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    print(f"{label}: {time.perf_counter() - start:.1f}s")


def main(argv: list[str] | None = None) -> int:
    """Train, print the losses and sample names (see the module docstring for the options)."""
    p = parser("microgpt", DESCRIPTION, seed=42)
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default {DEFAULT_STEPS}, {FULL_STEPS} with --full)")
    p.add_argument("--samples", type=int, default=20, help="names to sample (default %(default)s)")
    p.add_argument("--draw", type=Path, metavar="OUT.svg", help="draw the graph of one position, parts collapsed")
    p.add_argument("--explore", type=Path, metavar="OUT.html", help="the same graph in microgrannd's explorer")
    p.add_argument("--position", type=int, default=0, help="the position drawn (default %(default)s)")
    p.add_argument("--gc", action="store_true", help="leave Python's cyclic garbage collector on while training")
    p.add_argument("--compile", nargs="?", const="tape", choices=("tape", "codegen", "auto"), metavar="METHOD",
                   help="train with the loss compiled by mg.compile, a trace per name length; METHOD is tape "
                        "(the default: compiles fastest), codegen (runs fastest) or auto")
    args = p.parse_args(argv)
    steps = args.steps if args.steps is not None else FULL_STEPS if args.full else DEFAULT_STEPS
    if steps < 1:
        p.error("--steps must be at least 1")
    result = run(steps, args.seed, args.samples, show_progress=True, pause_gc=not args.gc,
                 compile_method=args.compile)
    n_params = len(result.model.parameters())
    print(f"{n_params} parameters, vocabulary {result.vocab.size} tokens, {steps} steps in "
          f"{result.train_seconds:.1f}s ({1000 * result.train_seconds / steps:.0f} ms/step)")
    if result.compiled is not None:
        info = result.compiled.cache_info()
        run_seconds = result.train_seconds - info.compile_seconds
        print(f"compiled ({args.compile}): {info.misses} traces (one per name length), {info.hits} cache hits; "
              f"compiling took {info.compile_seconds:.1f}s ({info.compile_seconds / info.misses:.2f}s a trace), "
              f"the steps {run_seconds:.1f}s ({1000 * run_seconds / steps:.1f} ms/step)")
    every = max(1, steps // 10)
    for k in range(0, steps, every):
        window = result.losses[k : k + every]
        print(f"  steps {k + 1:4d}-{k + len(window):4d}  mean loss {sum(window) / len(window):.4f}")
    print("samples (temperature 0.5):")
    print("  " + ", ".join(result.samples))
    if args.draw or args.explore:
        doc = load_names()[0]
        try:
            root = position_graph(result.model, result.vocab, doc, args.position)
        except ValueError as e:
            p.error(str(e))
        if args.draw:
            write_drawing(root, args.draw)
        if args.explore:
            write_explorer(root, args.explore)
    return 0


if __name__ == "__main__":
    sys.exit(main())
