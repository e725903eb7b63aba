"""The command line and the orchestration: one worker process per engine, the parent hands out tasks.

Each engine runs in an interpreter of its own, so one engine's imports and
garbage (PyTorch brings hundreds of thousands of objects for the collector to
scan) do not slow another down.  The parent starts the workers, walks the
workload table and sends each task to every engine taking part, in turns; a
worker answers each task (one JSON line on its stdin) with its rows (one JSON
line on its stdout).  A task that may crash the interpreter (a very deep
chain) or must start clean (memory) runs in a fresh worker of its own.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import benchmarks
from benchmarks.engines import ENGINE_FACTORIES, ENGINE_ORDER, Engine
from benchmarks.measure import CLOCKS, QUICK, REL_TOL, Config, Results, Task, run_sampler, set_clock
from benchmarks.report import absences, survivors, table, targets, to_json
from benchmarks.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent  # the checkout: the workers run there


# --------------------------------------------------------------------------
# The worker's side


def execute(task: Task, name: str, engine: Engine | None) -> Results:
    """Run ``task`` for engine ``name`` in this process (``engine``: its adapter if a graph engine)."""
    workload = WORKLOADS[task.workload]
    results = Results()
    row = results.row(task.row, task.variant, name)
    if workload.probe is not None:
        if engine is None:
            raise ValueError(f"workload {workload.name!r} measures graph engines only, not {name!r}")
        row.extra = workload.probe(engine, task.params)
        return results
    if workload.reference is None:
        raise ValueError(f"workload {workload.name!r} has no reference numbers to check against")
    want = workload.reference(task.params)
    sampler = workload.sampler(name, engine, task.params)
    run_sampler(row, want, sampler, task.mode, task.warmup, task.samples)
    return results


def worker_main(name: str) -> int:
    """A worker: say whether the engine is there, then answer each task read from stdin with its rows."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing an engine prints may mix with the answers
    engine, missing = None, ""
    if name in ENGINE_FACTORIES:
        try:
            engine = ENGINE_FACTORIES[name]()
        except ImportError as e:
            missing = f"not importable ({e})"
    print(json.dumps({"missing": missing}), file=out, flush=True)
    if missing:
        return 0
    for line in sys.stdin:
        rows = execute(Task(**json.loads(line)), name, engine).rows.values()
        print(json.dumps([asdict(r) for r in rows]), file=out, flush=True)
    return 0


# --------------------------------------------------------------------------
# The parent's side


def worker_command(name: str, clock: str) -> list[str]:
    """The command line of a worker for engine ``name``."""
    return [sys.executable, "-m", "benchmarks", "--worker", name, "--clock", clock]


def merge_answer(results: Results, answer: list[dict[str, Any]]) -> None:
    """Add a worker's rows to ``results``."""
    for d in answer:
        results.row(d["workload"], d["variant"], d["engine"]).merge(d)


def task_line(task: Task) -> str:
    """A task as the line a worker reads."""
    return json.dumps(asdict(task)) + "\n"


class Worker:
    """The parent's handle on one engine's worker process."""

    def __init__(self, name: str, clock: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            worker_command(name, clock), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        hello = self._read()
        self.missing = "the worker did not start" if hello is None else str(hello["missing"])

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def call(self, results: Results, task: Task) -> None:
        """Run a task there and merge its rows; a dead worker marks the task's row."""
        row = results.row(task.row, task.variant, self.name)
        if row.error:
            return
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(task_line(task))
            self.proc.stdin.flush()
            answer = self._read()
        except BrokenPipeError:
            answer = None
        if answer is None:
            row.error = f"crashed (worker exit status {self.proc.poll()})"
            return
        merge_answer(results, answer)

    def close(self) -> None:
        """Let the worker finish."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Pool:
    """The running workers, and what a workload's schedule may ask of them (a ``Scheduler``)."""

    def __init__(self, config: Config, modes: Sequence[str], clock: str) -> None:
        self.results = Results()
        self.config = config
        self.modes = modes
        self.clock = clock
        self.workers: dict[str, Worker] = {}
        self.missing: dict[str, str] = {}

    def start(self, names: Sequence[str]) -> None:
        """A worker per engine; engines that cannot start are noted as missing."""
        for name in names:
            w = Worker(name, self.clock)
            if w.missing:
                self.missing[name] = w.missing
                w.close()
            else:
                self.workers[name] = w

    def sample(self, name: str, task: Task) -> None:
        """Run ``task`` in engine ``name``'s worker and merge its rows."""
        self.workers[name].call(self.results, task)

    def fresh(self, name: str, task: Task, timeout: float) -> None:
        """Run ``task`` in a fresh worker for ``name``; a crash or a timeout marks the task's row."""
        row = self.results.row(task.row, task.variant, name)
        try:
            proc = subprocess.run(
                worker_command(name, self.clock),
                input=task_line(task),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=ROOT,
            )
        except subprocess.TimeoutExpired:
            row.fail(f"timeout after {timeout:.0f} s")
            return
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or len(lines) < 2:
            tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            missing = json.loads(lines[0])["missing"] if lines else ""
            row.fail(missing or f"crashed: {tail[:120]}")
            return
        merge_answer(self.results, json.loads(lines[-1]))

    def close(self) -> None:
        """Let every worker finish."""
        for w in self.workers.values():
            w.close()


def check_names(engines: Sequence[str], workloads: Sequence[str], modes: Sequence[str]) -> None:
    """Raise ValueError naming any engine, workload or collector mode the benchmark does not know."""
    for kind, names, known in (
        ("engine", engines, ENGINE_ORDER),
        ("workload", workloads, tuple(WORKLOADS)),
        ("collector mode", modes, ("on", "off")),
    ):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown {kind}: {', '.join(unknown)} (choose from {', '.join(known)})")


def run(
    config: Config,
    engine_names: Sequence[str] = ENGINE_ORDER,
    workloads: Sequence[str] = tuple(WORKLOADS),
    modes: Sequence[str] = ("on", "off"),
    log: Callable[[str], None] = lambda s: None,
    clock: str = "wall",
) -> tuple[Results, dict[str, str]]:
    """Run the chosen workloads, engines interleaved; return the results and the missing engines."""
    check_names(engine_names, workloads, modes)
    pool = Pool(config, modes, clock)
    try:
        pool.start(engine_names)
        for name, workload in WORKLOADS.items():  # in the table's order
            if name in workloads:
                log(f"{name} ...")
                for engine in pool.workers:
                    if engine in workload.unable:
                        pool.results.absent[name, engine] = workload.unable[engine]
                workload.run(pool, [e for e in pool.workers if workload.takes_part(e)])
    finally:
        pool.close()
    return pool.results, pool.missing


# --------------------------------------------------------------------------
# The command line


def split(text: str) -> list[str]:
    """``"a,b,"`` -> ``["a", "b"]``."""
    return [s for s in text.split(",") if s]


def parser() -> argparse.ArgumentParser:
    """The command line's options."""
    doc = benchmarks.__doc__ or ""
    width = max(11, *map(len, WORKLOADS))
    listing = "\n".join(
        textwrap.fill(w.description, 100, initial_indent=f"  {w.name:<{width}} ", subsequent_indent=" " * (width + 3))
        for w in WORKLOADS.values()
    )
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=doc.split("\n\n")[0],
        epilog=f"workloads:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    p.add_argument("--json", metavar="PATH", help="also write every sample as JSON")
    p.add_argument(
        "--engines", default=",".join(ENGINE_ORDER), help="comma-separated subset of " + ",".join(ENGINE_ORDER)
    )
    p.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated subset of " + ",".join(WORKLOADS)
    )
    p.add_argument("--gc", default="on,off", help="collector modes to measure: on, off or on,off")
    p.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall-clock time (default) or process CPU time (steadier on a busy machine)",
    )
    p.add_argument("--worker", metavar="ENGINE", help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    p = parser()
    args = p.parse_args(argv)
    set_clock(args.clock)
    if args.worker:
        return worker_main(args.worker)
    config = QUICK if args.quick else Config()
    names, workloads, modes = split(args.engines), split(args.workloads), split(args.gc)
    try:
        check_names(names, workloads, modes)
    except ValueError as e:
        p.error(str(e))
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"gc thresholds {gc.get_threshold()}; clock: {args.clock}; one process per engine",
        flush=True,
    )
    t0 = time.perf_counter()
    results, missing = run(
        config, names, workloads, modes, log=lambda s: print(s, file=sys.stderr, flush=True), clock=args.clock
    )
    for name, why in missing.items():
        print(f"{name}: {why}")
    print(table(results))
    print()
    for line in absences(results) + survivors(results) + targets(results):
        print(line)
    print(
        f"\n(total {time.perf_counter() - t0:.0f} s; times per step, per op for primitive rows; "
        f"results checked against the floor to rel. {REL_TOL:g})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, missing, config), indent=1))
    return 0
