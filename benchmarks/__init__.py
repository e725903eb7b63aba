"""Speed and memory of microgrannd beside micrograd, PyTorch and a plain-float floor.

Run from a clone (micrograd comes with the ``benchmark`` extra; PyTorch is used
when it can be imported)::

    pip install -e ".[benchmark]"
    python -m benchmarks                  # the full run (several minutes)
    python -m benchmarks --quick          # small sizes, a few seconds per engine
    python -m benchmarks --json results.json
    python -m benchmarks.compile_bench    # the compiled training step, in one process

Engines (:mod:`benchmarks.engines`)
    ``microgrannd``, ``closure-free`` (:mod:`benchmarks.closure_free`, nodes
    that store their local derivatives at forward time, as microgpt's engine
    does), ``micrograd`` (0.1.0), ``torch`` (0-dim float64 tensors; float64
    matrices in ``microgpt_step``) and ``floor``: the same arithmetic on
    plain floats with a hand-written backward, the lower bound for any scalar
    engine in pure Python.
    ``compiled`` and ``compiled-tape`` (``mlp_step`` and ``microgpt_step``):
    the same loss traced once by ``microgrannd.compile`` (generated code / flat
    tape) and replayed on floats each step; the compilation is timed apart and
    reported with the number of steps that pay it back against uncompiled
    microgrannd (for ``microgpt_step``, also an estimate of 1,000 training
    steps over the names, one compilation per name length, against the
    closure-free engine's).

Workloads (:mod:`benchmarks.workloads`, which says how to add one)
    ``mlp_step`` (micrograd's demo training step, :mod:`benchmarks.mlp`),
    ``primitive``, ``wide``, ``chain``, ``memory`` and ``microgpt_step``
    (one training step of ``demos/microgpt.py``'s scalar GPT,
    :mod:`benchmarks.microgpt_workload`; micrograd, without ``log`` and
    ``exp``, cannot run it); ``--help`` lists them.

Method (:mod:`benchmarks.measure`, :mod:`benchmarks.runner`)
    Each engine runs in a worker process of its own (so one engine's imports
    and garbage do not slow another's collector down); the parent hands out
    the work in turns.  Every engine runs the same model code (written with
    Python operators, so the arithmetic is identical), the engines are
    interleaved within each repeat, and every result (loss, value, every
    gradient) is checked against the floor's numbers before its time is
    reported: a wrong result is reported as such, never timed.  ``mlp_step``,
    ``primitive``, ``wide``, ``chain`` and ``microgpt_step`` are measured
    with the garbage collector on (the interpreter's default) and off; the library itself never
    touches the collector.  Before each block of timed work the collector runs
    once, untimed, so one engine's garbage is not charged to the next; within
    a block an engine pays for its own garbage, as in a training loop.
    :mod:`benchmarks.report` prints the table, the ratios and the targets.
"""
