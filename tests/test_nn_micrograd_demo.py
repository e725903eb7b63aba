"""micrograd's moons demo code runs unchanged against microgrannd.nn, with micrograd's gradients.

The code below is the training part of micrograd's demo notebook, as written
there (only the number of steps is a parameter, and the data are given rather
than drawn with scikit-learn).  It runs once with micrograd's imports and
once with microgrannd's; the networks start from the same weights.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("micrograd")

MICROGRAD = "from micrograd.engine import Value\nfrom micrograd.nn import Neuron, Layer, MLP"
MICROGRANND = "from microgrannd import Value\nfrom microgrannd.nn import Neuron, Layer, MLP"

MODEL = '''
model = MLP(2, [16, 16, 1]) # 2-layer neural network
print(model)
print("number of parameters", len(model.parameters()))
'''

TRAIN = '''
# loss function
def loss(batch_size=None):

    # inline DataLoader :)
    if batch_size is None:
        Xb, yb = X, y
    else:
        ri = np.random.permutation(X.shape[0])[:batch_size]
        Xb, yb = X[ri], y[ri]
    inputs = [list(map(Value, xrow)) for xrow in Xb]

    # forward the model to get scores
    scores = list(map(model, inputs))

    # svm "max-margin" loss
    losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(yb, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    # L2 regularization
    alpha = 1e-4
    reg_loss = alpha * sum((p*p for p in model.parameters()))
    total_loss = data_loss + reg_loss

    # also get accuracy
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]
    return total_loss, sum(accuracy) / len(accuracy)

total_loss, acc = loss()
print(total_loss, acc)

# optimization
for k in range(STEPS):

    # forward
    total_loss, acc = loss()

    # backward
    model.zero_grad()
    total_loss.backward()

    # update (sgd)
    learning_rate = 1.0 - 0.9*k/100
    for p in model.parameters():
        p.data -= learning_rate * p.grad

    if k % 1 == 0:
        print(f"step {k} loss {total_loss.data}, accuracy {acc*100}%")
'''


def _run(imports: str, X: Any, y: Any, weights: list[float] | None, steps: int) -> dict[str, Any]:
    ns: dict[str, Any] = {"np": np, "X": X, "y": y, "STEPS": steps}
    exec(imports, ns)
    exec(MODEL, ns)
    params = ns["model"].parameters()
    ns["initial"] = [float(p.data) for p in params]
    if weights is not None:
        for p, w in zip(params, weights, strict=True):
            p.data = w
    exec(TRAIN, ns)
    return ns


def test_micrograd_demo_runs_unchanged_with_the_same_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1, -1)
    random.seed(1337)
    theirs = _run(MICROGRAD, X, y, None, 3)
    ours = _run(MICROGRANND, X, y, theirs["initial"], 3)
    capsys.readouterr()
    assert ours["total_loss"].data == pytest.approx(theirs["total_loss"].data, rel=1e-12)
    assert ours["acc"] == theirs["acc"]
    for p, q in zip(ours["model"].parameters(), theirs["model"].parameters(), strict=True):
        assert p.grad == pytest.approx(q.grad, rel=1e-9, abs=1e-15)
        assert p.data == pytest.approx(q.data, rel=1e-9, abs=1e-15)
    assert str(ours["model"]) == str(theirs["model"])
