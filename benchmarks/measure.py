"""What a workload is, and how one sample of it is timed, checked and recorded.

A :class:`Workload` is one entry of the table in :mod:`benchmarks.workloads`.
The parent process turns it into :class:`Task` s; each engine's worker turns a
task into samples with :func:`run_sampler`, which checks every sample's
numbers against the workload's reference (:func:`verify`) before its time is
recorded in a :class:`Row`: a wrong result is reported as such, never timed.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from benchmarks.engines import FLOOR, GRAPH_ENGINES, Engine

REL_TOL = 1e-9  # results must match the reference to this relative tolerance
ABS_TOL = 1e-12

Params = dict[str, Any]  # a task's sizes: sent to the workers as JSON
StepOut = tuple[float, dict[str, float], dict[str, Any]]  # (seconds, {phase: seconds}, result numbers)


# --------------------------------------------------------------------------
# Clocks and the collector


CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns, "cpu": time.process_time_ns}
_clock = CLOCKS["wall"]


def set_clock(name: str) -> None:
    """Time with wall-clock time (the default) or this process's CPU time.

    CPU time is steadier on a machine busy with other work; it still counts
    the garbage collector, which runs in the same thread.
    """
    global _clock
    _clock = CLOCKS[name]


def now() -> int:
    """The chosen clock, in nanoseconds."""
    return _clock()


@contextmanager
def gc_mode(mode: str) -> Iterator[None]:
    """Run the block with the collector on (``"on"``) or off, restoring it after."""
    was = gc.isenabled()
    if mode == "off":
        gc.disable()
    else:
        gc.enable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def timed_graph(engine: Engine, build: Callable[[], Any]) -> tuple[float, list[int]]:
    """Build a graph with ``build()``, backward from its root, read the root's value, drop the graph.

    Returns the value and the nanoseconds of [build, backward, free].
    """
    t0 = now()
    root = build()
    t1 = now()
    engine.backward(root)
    t2 = now()
    value = engine.value(root)
    t3 = now()
    root = None
    t4 = now()
    return value, [t1 - t0, t2 - t1, t4 - t3]


def graph_phases(ns: list[int]) -> tuple[float, dict[str, float]]:
    """:func:`timed_graph`'s nanoseconds as (total seconds, {build, backward, free})."""
    phases = {k: v / 1e9 for k, v in zip(("build", "backward", "free"), ns, strict=True)}
    return sum(phases.values()), phases


# --------------------------------------------------------------------------
# Checking results


class ResultMismatch(AssertionError):
    """An engine's result differs from the reference: its time is not reported."""


def verify(engine: str, workload: str, got: dict[str, Any], want: dict[str, Any]) -> None:
    """Raise :class:`ResultMismatch` unless every number in ``got`` matches ``want``.

    Both are dicts of floats or lists of floats with the same keys.
    """
    for key, expected in want.items():
        actual = got.get(key)
        exp_list = expected if isinstance(expected, list) else [expected]
        act_list = actual if isinstance(actual, list) else [actual]
        if len(exp_list) != len(act_list):
            raise ResultMismatch(
                f"{engine}/{workload}: {key} has {len(act_list)} numbers, expected {len(exp_list)}"
            )
        for i, (a, e) in enumerate(zip(act_list, exp_list, strict=False)):
            if not isinstance(a, float) or not math.isclose(a, e, rel_tol=REL_TOL, abs_tol=ABS_TOL):
                raise ResultMismatch(f"{engine}/{workload}: {key}[{i}] = {a!r}, the reference says {e!r}")


# --------------------------------------------------------------------------
# Results


@dataclass
class Row:
    """One engine on one workload variant: samples in seconds, or why none."""

    workload: str
    variant: str
    engine: str
    samples: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def median(self) -> float | None:
        """Median of the samples (None if the engine failed or was skipped)."""
        return statistics.median(self.samples) if self.samples and not self.error else None

    @property
    def min(self) -> float | None:
        """Fastest sample (None if the engine failed or was skipped)."""
        return min(self.samples) if self.samples and not self.error else None

    def add(self, total: float, phases: dict[str, float] | None = None) -> None:
        """Record one sample (and its phases)."""
        self.samples.append(total)
        for k, v in (phases or {}).items():
            self.phases.setdefault(k, []).append(v)

    def drop_last(self) -> None:
        """Forget the last sample (a warm-up step)."""
        if self.samples:
            self.samples.pop()
            for v in self.phases.values():
                v.pop()

    def fail(self, error: str) -> None:
        """Mark the row failed and drop its samples: a failed engine has no time."""
        self.error = error
        self.samples.clear()
        self.phases.clear()

    def merge(self, d: dict[str, Any]) -> None:
        """Add a worker's row (as a dict) to this one; an error sticks."""
        if self.error:
            return
        if d["error"]:
            self.fail(d["error"])
            return
        self.samples.extend(d["samples"])
        for k, v in d["phases"].items():
            self.phases.setdefault(k, []).extend(v)
        self.extra.update(d["extra"])


class Results:
    """All rows of a run, addressed by (workload, variant, engine).

    ``absent`` says why an engine of the run has no row for a workload it
    cannot express (by (workload, engine); see ``Workload.unable``).
    """

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], Row] = {}
        self.absent: dict[tuple[str, str], str] = {}

    def row(self, workload: str, variant: str, engine: str) -> Row:
        """The row for this key, created on first use."""
        key = (workload, variant, engine)
        if key not in self.rows:
            self.rows[key] = Row(workload, variant, engine)
        return self.rows[key]

    def get(self, workload: str, variant: str, engine: str) -> Row | None:
        """The row if it exists."""
        return self.rows.get((workload, variant, engine))


# --------------------------------------------------------------------------
# Samples


class Sampler(Protocol):
    """One engine's instance of a workload, set up and ready to be timed."""

    def step(self) -> StepOut:
        """One timed sample: (seconds, {phase: seconds}, the numbers to check)."""
        ...

    def extra(self) -> dict[str, Any]:
        """Numbers for the row beside its times (a compiled engine's compile time)."""
        ...


@dataclass
class FnSampler:
    """A sampler that calls one function per sample."""

    fn: Callable[[], StepOut]

    def step(self) -> StepOut:
        """Call the function."""
        return self.fn()

    def extra(self) -> dict[str, Any]:
        """Nothing beside the times."""
        return {}


def run_checked(row: Row, want: dict[str, Any], fn: Callable[[], StepOut]) -> None:
    """Run one timed sample, verify it against ``want``, and record it.

    A mismatch or a RecursionError marks the row with the error and drops its samples.
    """
    if row.error:
        return
    try:
        total, phases, got = fn()
        verify(row.engine, row.workload, got, want)
    except ResultMismatch as e:
        row.fail(f"WRONG RESULT: {e}")
        return
    except RecursionError:
        row.fail("RecursionError")
        return
    row.add(total, phases)


def run_sampler(
    row: Row, want: dict[str, Any], sampler: Sampler, mode: str, warmup: int = 0, samples: int = 1
) -> None:
    """Time ``sampler`` into ``row`` with the collector ``mode``: checked warm-up steps, then samples.

    The collector runs once before (untimed), so earlier garbage is not charged
    to this engine; within the block the engine pays for its own garbage, as in
    a training loop.  Warm-up steps are checked, then dropped.
    """
    with gc_mode(mode):
        gc.collect()
        for _ in range(warmup):
            run_checked(row, want, sampler.step)
            row.drop_last()
        for _ in range(samples):
            run_checked(row, want, sampler.step)
        if not row.error:
            row.extra.update(sampler.extra())
        gc.collect()


# --------------------------------------------------------------------------
# Workloads


@dataclass
class Config:
    """Sizes and repeats of one run (a workload reads the fields it needs)."""

    quick: bool = False  # a workload without fields of its own picks small sizes from this
    blocks: int = 5
    steps: int = 2
    prim_repeats: int = 7
    prim_reps: int = 20
    wide_n: int = 100_000
    wide_repeats: int = 5
    chain_sizes: tuple[int, ...] = (100, 400, 1_000, 10_000, 100_000, 1_000_000)
    chain_repeats: int = 3
    chain_budget: float = 120.0
    memory_steps: int = 50_000  # 2 op nodes per step: 100,000 op nodes
    mlp_points: int = 100


QUICK = Config(
    quick=True,
    blocks=2,
    steps=1,
    prim_repeats=3,
    prim_reps=4,
    wide_n=10_000,
    wide_repeats=2,
    chain_sizes=(100, 400, 1_000, 10_000),
    chain_repeats=2,
    chain_budget=30.0,
    memory_steps=10_000,
)


@dataclass(frozen=True)
class Task:
    """One unit of work for one engine's worker: a row's samples with the collector on or off."""

    workload: str  # the Workload's name
    row: str  # the row's workload column ("primitive add")
    variant: str  # the row's variant column ("gc on")
    mode: str  # the collector during the samples: "on" or "off"
    params: Params
    warmup: int = 0
    samples: int = 1


@dataclass(frozen=True)
class Case:
    """One row of a timed workload: its parameters and how often to sample it."""

    row: str
    params: Params
    repeats: int  # tasks per collector mode, the engines taking turns within each
    warmup: int = 0  # per task: checked steps that are not kept
    samples: int = 1  # per task: timed steps

    def task(self, workload: str, mode: str) -> Task:
        """The task of this case with the collector ``mode``."""
        return Task(workload, self.row, f"gc {mode}", mode, self.params, self.warmup, self.samples)


class Scheduler(Protocol):
    """What the runner offers a workload that schedules its own tasks (see ``Workload.schedule``)."""

    results: Results
    config: Config
    modes: Sequence[str]

    def sample(self, name: str, task: Task) -> None:
        """Run ``task`` in engine ``name``'s worker and merge its rows."""
        ...

    def fresh(self, name: str, task: Task, timeout: float) -> None:
        """Run ``task`` for engine ``name`` in a fresh process; a crash or timeout marks its row."""
        ...


GraphBuilder = Callable[[Engine, Params], Sampler]
Builder = Callable[[Params], Sampler]


@dataclass(frozen=True)
class Workload:
    """One entry of the workload table: what to run on each engine and the numbers to expect.

    ``reference(params)`` gives the numbers every engine must reproduce (loss,
    values, gradients; see :func:`verify`) for its time to count.  Builders
    make an engine's :class:`Sampler` for a task's ``params``, in that engine's
    worker: ``graph`` for every graph engine (through its :class:`Engine`
    adapter), ``floor`` for plain floats, ``only`` for engines of this workload
    alone (by name).  ``unable`` names graph engines that cannot express the
    workload, with the reason the report gives instead of a row.
    ``cases(config)`` lists the rows to time.

    A workload that is not a list of timed cases gives ``schedule`` (the
    parent's side, instead of ``cases``) and may give ``probe``: an untimed
    measurement of a graph engine whose numbers become the row's ``extra``.
    """

    name: str
    description: str
    reference: Callable[[Params], dict[str, Any]] | None = None
    graph: GraphBuilder | None = None
    floor: Builder | None = None
    only: Mapping[str, Builder] = field(default_factory=dict)
    unable: Mapping[str, str] = field(default_factory=dict)
    cases: Callable[[Config], Sequence[Case]] | None = None
    schedule: Callable[[Scheduler, Sequence[str]], None] | None = None
    probe: Callable[[Engine, Params], dict[str, Any]] | None = None

    def takes_part(self, engine: str) -> bool:
        """Whether the engine named ``engine`` runs this workload."""
        if engine in self.unable:
            return False
        if engine == FLOOR:
            return self.floor is not None
        if engine in GRAPH_ENGINES:
            return self.graph is not None or self.probe is not None
        return engine in self.only

    def sampler(self, name: str, engine: Engine | None, params: Params) -> Sampler:
        """Engine ``name``'s sampler for ``params`` (``engine``: its adapter, if it is a graph engine)."""
        if name in self.only:
            return self.only[name](params)
        if name == FLOOR and self.floor is not None:
            return self.floor(params)
        if engine is not None and self.graph is not None:
            return self.graph(engine, params)
        raise ValueError(f"engine {name!r} takes no part in workload {self.name!r}")

    def run(self, scheduler: Scheduler, engines: Sequence[str]) -> None:
        """The parent's side: every case's tasks, engines interleaved within each repeat."""
        if self.schedule is not None:
            self.schedule(scheduler, engines)
            return
        if self.cases is None:
            raise ValueError(f"workload {self.name!r} has neither cases nor a schedule")
        for case in self.cases(scheduler.config):
            for mode in scheduler.modes:
                for _ in range(case.repeats):
                    task = case.task(self.name, mode)
                    for name in engines:
                        scheduler.sample(name, task)
