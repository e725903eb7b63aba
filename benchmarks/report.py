"""The report: the table of times and ratios, the targets met or not, and the JSON of a run."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
from dataclasses import asdict
from typing import Any

from benchmarks.engines import ENGINE_ORDER
from benchmarks.measure import Config, Results, Row
from benchmarks.workloads import COMPILED_ENGINES, PRIMITIVE_KINDS, chain_size

GC_VARIANTS = ("gc on", "gc off")
MICROGPT_TARGET = 2.5  # microgrannd's step of the scalar GPT, this many times faster than the closure-free engine


def fmt_time(s: float | None) -> str:
    """Seconds in a readable unit."""
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e9:.0f} ns"


def ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as text."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3g}"


def median_of(results: Results, workload: str, variant: str, engine: str) -> float | None:
    """The median of that row, None if it has no time."""
    row = results.get(workload, variant, engine)
    return None if row is None else row.median


COMPILED_PEERS = {"mlp_step": "micrograd", "microgpt_step": "closure-free"}
"""The workloads with compiled rows, and the peer engine each compiled row is compared with."""
AMORTISED_STEPS = 1000  # microgpt_step's amortised estimate: this many training steps, one name each


def compiled_summary(results: Results, variant: str, engine: str, workload: str = "mlp_step") -> dict[str, Any] | None:
    """A compiled row's ratios, compile time and amortisation (None if it has no time).

    ``amortised_after_steps``: how many steps the compilation takes to pay
    back against uncompiled microgrannd's fastest step of the same variant (a
    conservative count: the median saves more); None if it never does.
    ``<peer>_per``: how many times faster than the workload's peer engine
    (:data:`COMPILED_PEERS`).  A row that says how many name lengths there
    are (microgpt_step's ``lengths``) also gets ``amortised``: an estimate,
    computed from this run's medians, of :data:`AMORTISED_STEPS` steps over
    the names, one compilation per length, against the peer's as many steps.
    """
    row = results.get(workload, variant, engine)
    if row is None or row.median is None or "compile_seconds" not in row.extra:
        return None
    peer_name = COMPILED_PEERS[workload]
    peer, fl = (median_of(results, workload, variant, n) for n in (peer_name, "floor"))
    plain = results.get(workload, variant, "microgrannd")
    out: dict[str, Any] = {
        "median": row.median,
        "per_floor": row.median / fl if fl else None,
        f"{peer_name.replace('-', '_')}_per": peer / row.median if peer else None,
        "compile_seconds": row.extra["compile_seconds"],
        "nodes": row.extra.get("nodes"),
        "amortised_after_steps": None,
    }
    if plain is not None and plain.min is not None and plain.min > row.median:
        out["amortised_after_steps"] = math.ceil(out["compile_seconds"] / (plain.min - row.median))
    lengths = row.extra.get("lengths")
    if lengths and peer:
        n = AMORTISED_STEPS
        total = lengths * out["compile_seconds"] + n * row.median
        out["amortised"] = {"steps": n, "compilations": lengths, "seconds": total, "peer_seconds": n * peer,
                            "peer_per": n * peer / total}
    return out


def notes(results: Results, row: Row) -> str:
    """A timing row's notes: its error, or its phases, its graph's nodes (and a compiled row's compilation)."""
    text = row.error
    if not text and row.phases:
        text = " ".join(f"{k} {fmt_time(statistics.median(v))}" for k, v in row.phases.items())
    nodes = row.extra.get("nodes")
    if row.median is not None and nodes:
        text += f"; {nodes:,} nodes, {fmt_time(row.median / nodes)}/node"
    compiled = row.workload in COMPILED_PEERS and not row.error
    summary = compiled_summary(results, row.variant, row.engine, row.workload) if compiled else None
    if summary is not None:
        steps = summary["amortised_after_steps"]
        text += (
            f"; compile {fmt_time(summary['compile_seconds'])}, paid back after "
            f"{'never' if steps is None else steps} steps"
        )
    return text


def table(results: Results) -> str:
    """The timing rows, then memory, as fixed-width text."""
    lines = []
    head = (
        f"{'workload':<18}{'variant':<20}{'engine':<13}{'median':>11}{'min':>11}"
        f"{'/micrograd':>11}{'/floor':>9}  notes"
    )
    lines.append(head)
    lines.append("-" * len(head))
    order = {name: i for i, name in enumerate(ENGINE_ORDER)}
    first_seen: dict[tuple[str, str], int] = {}
    for i, k in enumerate(results.rows):
        first_seen.setdefault(k[:2], i)
    keys = sorted((k for k in results.rows if k[0] != "memory"), key=lambda k: (first_seen[k[:2]], order.get(k[2], 99)))
    for key in keys:
        row = results.rows[key]
        mg = median_of(results, row.workload, row.variant, "micrograd")
        fl = median_of(results, row.workload, row.variant, "floor")
        lines.append(
            f"{row.workload:<18}{row.variant:<20}{row.engine:<13}{fmt_time(row.median):>11}{fmt_time(row.min):>11}"
            f"{ratio(row.median, mg):>11}{ratio(row.median, fl):>9}  {notes(results, row)}"
        )
    mem = [r for k, r in results.rows.items() if k[0] == "memory"]
    if mem:
        lines.append("")
        lines.append(
            f"{'memory':<18}{'variant':<20}{'engine':<13}{'traced B/node':>14}{'peak bwd B/node':>16}"
            f"{'RSS B/node':>12}  notes"
        )
        for row in mem:
            ex = row.extra

            def num(k: str, ex: dict[str, Any] = ex) -> str:
                return "-" if ex.get(k) is None else f"{ex[k]:.0f}"

            lines.append(
                f"{'':<18}{row.variant:<20}{row.engine:<13}{num('traced_per_node'):>14}"
                f"{num('traced_backward_peak_per_node'):>16}{num('rss_per_node'):>12}"
                f"  {row.error or ex.get('note', '')}"
            )
    return "\n".join(lines)


def absences(results: Results) -> list[str]:
    """Why an engine of the run has no row for a workload it cannot express."""
    return [f"{workload}: no {engine} row ({why})" for (workload, engine), why in results.absent.items()]


def met(ok: bool) -> str:
    """``met`` or ``NOT met``."""
    return "met" if ok else "NOT met"


def targets(results: Results) -> list[str]:
    """The targets for microgrannd's speed and memory, each met or not, from this run."""
    out = []

    def speedup(workload: str, variant: str) -> float | None:
        a = median_of(results, workload, variant, "micrograd")
        b = median_of(results, workload, variant, "microgrannd")
        return None if a is None or b is None else a / b

    for variant, goal in (("gc on", 20.0), ("gc off", 2.0)):
        s = speedup("mlp_step", variant)
        if s is not None:
            out.append(f"mlp_step {variant}: {s:.1f}x faster than micrograd (target >= {goal:g}x): {met(s >= goal)}")
    for variant in GC_VARIANTS:
        own = median_of(results, "microgpt_step", variant, "microgrannd")
        peer = median_of(results, "microgpt_step", variant, "closure-free")
        torch = median_of(results, "microgpt_step", variant, "torch")
        parts = []
        if own is not None and peer is not None:
            goal = MICROGPT_TARGET
            parts.append(f"{peer / own:.2f}x faster than closure-free (target >= {goal:g}x): {met(peer / own >= goal)}")
        if own is not None and torch is not None:
            parts.append(f"{own / torch:.3g}x torch's time")
        if parts:
            out.append(f"microgpt_step {variant}: " + "; ".join(parts))
    for engine in COMPILED_ENGINES:
        for variant in GC_VARIANTS:
            c = compiled_summary(results, variant, engine)
            if c is None:
                continue
            parts = []
            if c["per_floor"] is not None:
                parts.append(f"{c['per_floor']:.2f}x the floor (target <= 3x: {met(c['per_floor'] <= 3)})")
            if c["micrograd_per"] is not None:
                parts.append(f"{c['micrograd_per']:.0f}x faster than micrograd")
            steps = c["amortised_after_steps"]
            parts.append(
                f"compiled in {c['compile_seconds']:.2f} s ({c['nodes']:,} nodes), paid back against "
                f"microgrannd after {'never' if steps is None else steps} steps "
                f"(target <= 50: {met(steps is not None and steps <= 50)})"
            )
            out.append(f"mlp_step {engine} {variant}: " + "; ".join(parts))
    for engine in COMPILED_ENGINES:
        for variant in GC_VARIANTS:
            out += microgpt_compiled_targets(results, variant, engine)
    for kind in PRIMITIVE_KINDS:
        s = speedup(f"primitive {kind}", "gc on")
        a = results.get(f"primitive {kind}", "gc on", "micrograd")
        b = results.get(f"primitive {kind}", "gc on", "microgrannd")
        if s is not None and a is not None and b is not None:
            fb = sum(statistics.median(b.phases[k]) for k in ("forward", "backward")) / sum(
                statistics.median(a.phases[k]) for k in ("forward", "backward")
            )
            out.append(
                f"primitive {kind} (gc on): forward+backward+freeing {1 / s:.2f} of micrograd's "
                f"(forward+backward alone {fb:.2f}; target <= 0.33, judged with freeing): {met(1 / s <= 1 / 3)}"
            )
    for k, row in results.rows.items():
        if k[0] == "memory" and row.engine == "microgrannd" and row.extra.get("traced_per_node") is not None:
            b = row.extra["traced_per_node"]
            out.append(f"memory: {b:.0f} bytes per node (tracemalloc; target <= 300): {met(b <= 300)}")
    for mode in ("on", "off"):
        chain = [
            (chain_size(r.variant), r.median)
            for k, r in results.rows.items()
            if k[0] == "chain" and k[2] == "microgrannd" and r.median is not None and k[1].endswith(mode)
        ]
        if len(chain) > 1:
            (n0, t0), (n1, t1) = chain[1], chain[-1]  # from the second size (the first is tiny)
            grow = (t1 / n1) / (t0 / n0)
            out.append(
                f"chain gc {mode}: largest N {n1:,}; time per step at N={n1:,} is {grow:.2f}x that at "
                f"N={n0:,} ({'linear' if grow < 2 else 'NOT linear'})"
            )
    return out


def microgpt_compiled_targets(results: Results, variant: str, engine: str) -> list[str]:
    """A compiled microgpt_step row's target line (per step against closure-free) and its amortised estimate."""
    c = compiled_summary(results, variant, engine, "microgpt_step")
    if c is None or c["closure_free_per"] is None:
        return []
    s, goal = c["closure_free_per"], MICROGPT_TARGET
    steps = c["amortised_after_steps"]
    lines = [
        f"microgpt_step {engine} {variant}: {s:.1f}x faster than closure-free per step (target >= {goal:g}x): "
        f"{met(s >= goal)}; compiled in {c['compile_seconds']:.2f} s per name length ({c['nodes']:,} nodes), "
        f"paid back against microgrannd after {'never' if steps is None else steps} steps of that length"
    ]
    a = c.get("amortised")
    if a is not None:
        lines.append(
            f"microgpt_step {engine} {variant}, amortised (an estimate from the medians above, every name costing "
            f"what this one does): {a['steps']:,} steps over the names' {a['compilations']} lengths, "
            f"{a['compilations']} compilations included, take {a['seconds']:.1f} s against closure-free's "
            f"{a['peer_seconds']:.1f} s: {a['peer_per']:.2f}x"
        )
    return lines


def survivors(results: Results) -> list[str]:
    """The largest chain each engine completed."""
    best: dict[str, int] = {}
    for k, row in results.rows.items():
        if k[0] == "chain" and row.median is not None:
            n = chain_size(k[1])
            best[k[2]] = max(best.get(k[2], 0), n)
    return [f"chain: {name} survives N = {n:,}" for name, n in sorted(best.items())]


def to_json(results: Results, missing: dict[str, str], config: Config) -> dict[str, Any]:
    """Everything measured, with the machine it ran on."""
    rows = []
    for row in results.rows.values():
        d = asdict(row)
        d["median"], d["min"] = row.median, row.min
        rows.append(d)
    return {
        "python": sys.version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "config": asdict(config),
        "missing": missing,
        "absent": absences(results),
        "rows": rows,
        "compiled": {
            engine: {
                variant: summary
                for variant in GC_VARIANTS
                if (summary := compiled_summary(results, variant, engine)) is not None
            }
            for engine in COMPILED_ENGINES
        },
        "compiled_microgpt_step": {
            engine: {
                variant: summary
                for variant in GC_VARIANTS
                if (summary := compiled_summary(results, variant, engine, "microgpt_step")) is not None
            }
            for engine in COMPILED_ENGINES
        },
        "targets": targets(results),
    }
