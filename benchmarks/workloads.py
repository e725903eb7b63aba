"""The workloads: what each engine runs, the numbers it must reproduce, and the table of them all.

Adding a workload
-----------------
A workload is one :class:`~benchmarks.measure.Workload` in :data:`WORKLOADS`::

    Workload(
        "my_step",                                    # the name for --workloads
        "one line on what it measures",               # shown by --help
        reference=lambda p: my_floor(p["n"])[2],      # the numbers every engine must reproduce
        graph=lambda engine, p: FnSampler(partial(my_graph, engine, p["n"])),  # every graph engine
        floor=lambda p: FnSampler(partial(my_floor, p["n"])),                 # plain floats (optional)
        cases=lambda c: [Case("my_step", {"n": 100 if c.quick else 10_000}, repeats=3)],
    )

* ``my_graph(engine, n)`` builds the model with Python operators on
  ``engine.leaf(...)`` values, runs ``engine.backward`` and returns
  ``(seconds, {phase: seconds}, numbers)``, timed with :func:`~benchmarks.measure.now`;
  ``my_floor(n)`` does the same arithmetic on floats.
* ``numbers`` (the loss and the gradients, as floats or lists of floats) are
  checked against ``reference(params)`` before the time counts: engines whose
  losses disagree are reported as wrong, never timed.  The reference is
  usually the floor's numbers; any computation the engines must agree with will do.
* ``params`` travel to each engine's worker process as JSON.  A sampler with
  state (set up once, stepped many times) is any object with ``step()`` and
  ``extra()``, as the mlp_step runners of :mod:`benchmarks.mlp`;
  ``only={"name": builder}`` adds engines that run this workload alone (the
  compiled ones); ``unable={"name": "why"}`` leaves out graph engines that
  cannot express it (the report gives the reason instead of a row);
  ``Case(warmup=..., samples=...)`` sets the steps per task.
* Sizes come from the :class:`~benchmarks.measure.Config`: ``config.quick``
  is set by ``--quick``; a workload may also add fields of its own there.

A workload in a module of its own (importing ``Workload`` and ``Case`` from
:mod:`benchmarks.measure`) defines a function returning its Workload, and is
registered by one line in :data:`EXTRA`: ``"module:function"``.
"""

from __future__ import annotations

import gc
import importlib
import os
import random
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from benchmarks import mlp
from benchmarks.engines import Engine, relu_f
from benchmarks.measure import (
    Builder,
    Case,
    FnSampler,
    Params,
    Sampler,
    Scheduler,
    StepOut,
    Task,
    Workload,
    graph_phases,
    now,
    timed_graph,
)

# --------------------------------------------------------------------------
# mlp_step: micrograd's demo network and loss, one training step (benchmarks.mlp)


def compiled_builder(cls: type[mlp.CompiledMlp]) -> Builder:
    """The builder of a compiled engine: one runner per process, set up (compiled once) for the task's points."""
    runners: list[mlp.CompiledMlp] = []

    def build(p: Params) -> Sampler:
        if not runners:
            runners.append(cls())
        return mlp.setup(runners[0], p["points"])

    return build


MLP_STEP = Workload(
    "mlp_step",
    "micrograd's demo step: MLP 2-16-16-1 on 100 two-moons points, hinge loss + 1e-4 L2, forward, "
    "zero_grad, backward, SGD update; each phase timed",
    reference=lambda p: mlp.reference(p["points"]),
    graph=lambda engine, p: mlp.setup(mlp.GraphMlp(engine), p["points"]),
    floor=lambda p: mlp.setup(mlp.FloorMlp(), p["points"]),
    # each in a worker of its own: a compiled function keeps its traced graph
    # alive, tens of thousands of nodes that would slow another engine's collector
    only={"compiled": compiled_builder(mlp.CompiledMlp), "compiled-tape": compiled_builder(mlp.CompiledTapeMlp)},
    cases=lambda c: [Case("mlp_step", {"points": c.mlp_points}, repeats=c.blocks, warmup=1, samples=c.steps)],
)
COMPILED_ENGINES = tuple(MLP_STEP.only)


# --------------------------------------------------------------------------
# primitive: per-op cost on chains of one primitive


PRIMITIVE_LEN = 500  # short enough for micrograd's recursive toposort
PRIMITIVE_KINDS = ("add", "mul", "pow", "relu")


def prim_chain(kind: str, x: Any, c: Any, length: int) -> Any:
    """Apply one primitive ``length`` times: x+c, x*c, (x**2)**0.5, relu(x)."""
    if kind == "add":
        for _ in range(length):
            x = x + c
    elif kind == "mul":
        for _ in range(length):
            x = x * c
    elif kind == "pow":
        for _ in range(length // 2):
            x = (x**2.0) ** 0.5
    elif kind == "relu":
        for _ in range(length):
            x = x.relu()
    else:
        raise ValueError(kind)
    return x


def prim_start(kind: str) -> tuple[float, float]:
    """The chain's starting value and its constant."""
    return 1.3, 1.0001 if kind == "mul" else 0.001


def floor_prim(kind: str, length: int, reps: int) -> StepOut:
    """The same chains on floats with a hand-written backward."""
    x0, c0 = prim_start(kind)
    t_fwd = t_all = 0
    out = gx = gc_ = 0.0
    for _ in range(reps):
        t0 = now()
        tape = []
        x = x0
        if kind == "add":
            for _ in range(length):
                x = x + c0
        elif kind == "mul":
            for _ in range(length):
                tape.append(x)
                x = x * c0
        elif kind == "pow":
            for _ in range(length // 2):
                tape.append(x)
                y = x**2.0
                tape.append(y)
                x = y**0.5
        else:
            for _ in range(length):
                tape.append(x)
                x = relu_f(x)
        t1 = now()
        g, gc_ = 1.0, 0.0
        if kind == "add":
            gc_ = float(length)
        elif kind == "mul":
            for xi in reversed(tape):
                gc_ += g * xi
                g *= c0
        elif kind == "pow":
            for i in range(len(tape) - 1, 0, -2):
                g *= 0.5 * tape[i] ** -0.5
                g *= 2.0 * tape[i - 1]
        else:
            for xi in reversed(tape):
                g = g if xi > 0 else 0.0
        out, gx = x, g
        t2 = now()
        t_fwd += t1 - t0
        t_all += t2 - t0
    got: dict[str, Any] = {"out": out, "dx": gx}
    if kind in ("add", "mul"):
        got["dc"] = gc_
    return t_all / 1e9, {"forward": t_fwd / 1e9}, got


def graph_prim(engine: Engine, kind: str, length: int, reps: int) -> StepOut:
    """Build, backward and drop ``reps`` chains; time each part (the total includes freeing)."""
    x0, c0 = prim_start(kind)
    ns = [0, 0, 0]
    got: dict[str, Any] = {}
    for _ in range(reps):
        x, c = engine.leaf(x0), engine.leaf(c0)
        out, times = timed_graph(engine, partial(prim_chain, kind, x, c, length))
        ns = [a + b for a, b in zip(ns, times, strict=True)]
        got = {"out": out, "dx": engine.grad(x)}
        if kind in ("add", "mul"):
            got["dc"] = engine.grad(c)
    phases = {k: v / 1e9 for k, v in zip(("forward", "backward", "free"), ns, strict=True)}
    return sum(phases.values()), phases, got


def per_op(sample: Callable[[], StepOut], ops: int) -> StepOut:
    """Take a sample and divide its times by the number of ops."""
    total, phases, got = sample()
    return total / ops, {k: v / ops for k, v in phases.items()}, got


def prim_sampler(p: Params, engine: Engine | None = None) -> Sampler:
    """``reps`` chains of ``kind`` on ``engine`` (None: the floor), seconds per op."""
    kind, reps = p["kind"], p["reps"]
    chains = partial(floor_prim, kind) if engine is None else partial(graph_prim, engine, kind)
    return FnSampler(partial(per_op, partial(chains, PRIMITIVE_LEN, reps), PRIMITIVE_LEN * reps))


PRIMITIVE = Workload(
    "primitive",
    "per-op cost of add, mul, pow, relu (chains of 500 ops): forward, and forward+backward including "
    "freeing the graph",
    reference=lambda p: floor_prim(p["kind"], PRIMITIVE_LEN, 1)[2],
    graph=lambda engine, p: prim_sampler(p, engine),
    floor=prim_sampler,
    cases=lambda c: [
        Case(f"primitive {kind}", {"kind": kind, "reps": c.prim_reps}, repeats=c.prim_repeats)
        for kind in PRIMITIVE_KINDS
    ],
)


# --------------------------------------------------------------------------
# wide: sum of many products, pairwise


def pairwise_sum(xs: list[Any]) -> Any:
    """Sum by halving: depth log2(n), so recursive toposorts survive."""
    while len(xs) > 1:
        nxt = [xs[i] + xs[i + 1] for i in range(0, len(xs) - 1, 2)]
        if len(xs) % 2:
            nxt.append(xs[-1])
        xs = nxt
    return xs[0]


def wide_data(n: int) -> tuple[list[float], list[float]]:
    """Deterministic factors for the wide workload."""
    rng = random.Random(7)
    return [rng.uniform(-1, 1) for _ in range(n)], [rng.uniform(-1, 1) for _ in range(n)]


def floor_wide(n: int) -> StepOut:
    """Products and pairwise sum on floats; d sum / d a_i = b_i."""
    a, b = wide_data(n)
    t0 = now()
    s = pairwise_sum([x * y for x, y in zip(a, b, strict=False)])
    ga, gb = list(b), list(a)
    t1 = now()
    return (t1 - t0) / 1e9, {}, {"sum": s, "grad_a": ga[:: max(1, n // 50)], "grad_b": gb[:: max(1, n // 50)]}


def graph_wide(engine: Engine, n: int) -> StepOut:
    """Build the products and the sum tree, backward, drop the graph."""
    a, b = wide_data(n)
    la, lb = [engine.leaf(x) for x in a], [engine.leaf(x) for x in b]
    value, ns = timed_graph(engine, lambda: pairwise_sum([x * y for x, y in zip(la, lb, strict=False)]))
    k = max(1, n // 50)
    got = {
        "sum": value,
        "grad_a": [engine.grad(x) for x in la[::k]],
        "grad_b": [engine.grad(x) for x in lb[::k]],
    }
    return (*graph_phases(ns), got)


WIDE = Workload(
    "wide",
    "sum of 100,000 products, summed pairwise, then backward",
    reference=lambda p: floor_wide(p["n"])[2],
    graph=lambda engine, p: FnSampler(partial(graph_wide, engine, p["n"])),
    floor=lambda p: FnSampler(partial(floor_wide, p["n"])),
    cases=lambda c: [Case("wide", {"n": c.wide_n}, repeats=c.wide_repeats)],
)


# --------------------------------------------------------------------------
# chain: x = x*1.0001 + 0.0001, as deep as each engine goes


def floor_chain(n: int) -> StepOut:
    """The chain on floats; d x_n / d x_0 = 1.0001 ** n, accumulated backwards."""
    t0 = now()
    x = 0.5
    for _ in range(n):
        x = x * 1.0001 + 0.0001
    t1 = now()
    g = 1.0
    for _ in range(n):
        g *= 1.0001
    t2 = now()
    phases = {"build": (t1 - t0) / 1e9, "backward": (t2 - t1) / 1e9, "free": 0.0}
    return sum(phases.values()), phases, {"x": x, "dx0": g}


def graph_chain(engine: Engine, n: int) -> StepOut:
    """Build the chain, backward, drop it."""
    x0 = engine.leaf(0.5)

    def build() -> Any:
        x = x0
        for _ in range(n):
            x = x * 1.0001 + 0.0001
        return x

    value, ns = timed_graph(engine, build)
    return (*graph_phases(ns), {"x": value, "dx0": engine.grad(x0)})


def chain_variant(n: int, mode: str) -> str:
    """The row variant of a chain of ``n`` steps: ``"N=1,000 gc on"``."""
    return f"N={n:,} gc {mode}"


def chain_size(variant: str) -> int:
    """``n`` back from :func:`chain_variant`."""
    return int(variant.split()[0][2:].replace(",", ""))


SUBPROCESS_FROM = 100_000  # chains at least this long run in a fresh process


def chain_schedule(s: Scheduler, names: Sequence[str]) -> None:
    """Each N in turn, engines interleaved; an engine stops at its first failure.

    Sizes of at least SUBPROCESS_FROM ops run once in a fresh process (a crash
    there cannot take the run down), unless the engine's last time per op
    predicts more than the budget.
    """
    config = s.config
    for mode in s.modes:
        failed: dict[str, str] = {}
        per_op_time: dict[str, float] = {}
        for n in config.chain_sizes:
            task = Task("chain", "chain", chain_variant(n, mode), mode, {"n": n})
            for _rep in range(config.chain_repeats if n < SUBPROCESS_FROM else 1):
                for name in names:
                    row = s.results.row("chain", task.variant, name)
                    if name in failed:
                        row.error = row.error or f"skipped (failed at a smaller N: {failed[name]})"
                        continue
                    predicted = per_op_time.get(name, 0.0) * n
                    if predicted > config.chain_budget:
                        row.error = f"skipped (predicted {predicted:.0f} s > budget {config.chain_budget:.0f} s)"
                        continue
                    if n >= SUBPROCESS_FROM:
                        s.fresh(name, task, timeout=max(60.0, 4 * predicted))
                    else:
                        s.sample(name, task)
                    if row.error:
                        failed[name] = row.error
                    elif row.samples:
                        per_op_time[name] = min(row.samples) / n


CHAIN = Workload(
    "chain",
    "x = x*1.0001 + 0.0001 N times then backward, N up to 1,000,000; reports the largest N each engine survives",
    reference=lambda p: floor_chain(p["n"])[2],
    graph=lambda engine, p: FnSampler(partial(graph_chain, engine, p["n"])),
    floor=lambda p: FnSampler(partial(floor_chain, p["n"])),
    schedule=chain_schedule,
)


# --------------------------------------------------------------------------
# memory: bytes per op node, each engine in a fresh interpreter


def rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; else peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def memory_probe(e: Engine, p: Params) -> dict[str, Any]:
    """Bytes per op node after building a chain, and the peak during backward."""
    steps = p["steps"]
    ops = 2 * steps
    out: dict[str, Any] = {}
    gc.collect()
    # resident memory first, without tracemalloc's own overhead
    x0 = e.leaf(0.5)
    before = rss_bytes()
    x = x0
    for _ in range(steps):
        x = x * 1.0001 + 0.0001
    out["rss_per_node"] = (rss_bytes() - before) / ops
    x = None
    gc.collect()
    tracemalloc.start()
    x0 = e.leaf(0.5)
    base = tracemalloc.get_traced_memory()[0]
    x = x0
    for _ in range(steps):
        x = x * 1.0001 + 0.0001
    graph = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.reset_peak()
    try:
        e.backward(x)
        peak = tracemalloc.get_traced_memory()[1] - base
        out["traced_backward_peak_per_node"] = peak / ops
    except RecursionError:
        out["traced_backward_peak_per_node"] = None
    tracemalloc.stop()
    out["traced_per_node"] = graph / ops
    if e.name == "torch":
        out["note"] = "tracemalloc does not see PyTorch's C++ allocations"
    return out


def memory_schedule(s: Scheduler, names: Sequence[str]) -> None:
    """One fresh process per engine."""
    steps = s.config.memory_steps
    task = Task("memory", "memory", f"{2 * steps:,}-op chain", "on", {"steps": steps})
    for name in names:
        s.fresh(name, task, timeout=600.0)


MEMORY = Workload(
    "memory",
    "bytes per op node of a 100,000-op chain (tracemalloc and resident memory), constants included, "
    "each engine in a fresh process",
    probe=memory_probe,
    schedule=memory_schedule,
)


# --------------------------------------------------------------------------
# The table


# Workloads in modules of their own, as "module:function" (the function returns
# a Workload).
EXTRA: tuple[str, ...] = ("benchmarks.microgpt_workload:microgpt_step",)


def load_extra(spec: str) -> Workload:
    """The Workload returned by ``"module:function"``."""
    module, _, function = spec.partition(":")
    workload = getattr(importlib.import_module(module), function)()
    if not isinstance(workload, Workload):
        raise TypeError(f"{spec} returned {type(workload).__name__}, not a Workload")
    return workload


# In the order they run and are reported.
WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (MLP_STEP, PRIMITIVE, WIDE, CHAIN, MEMORY, *map(load_extra, EXTRA))
}
