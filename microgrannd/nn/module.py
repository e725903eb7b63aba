"""Modules: :class:`Module`, :class:`Neuron`, :class:`Layer`, :class:`MLP`, :class:`Dropout`.

The API follows micrograd's ``nn`` (its demo code runs unchanged against
this module): a neuron computes ``activation(sum(w_i * x_i) + b)``, a layer is
a list of neurons, an MLP a list of layers whose last one is linear.  A layer
or network with one output returns a Value, with several a list.

Sizes, inputs and probabilities are checked where they are given: a wrong
one is a ``TypeError`` or ``ValueError`` that names the argument and says
what was expected.

Each call of a :class:`Neuron`, :class:`Layer`, :class:`MLP` or
:class:`Dropout` records its nodes in a scope named after its class, nested
as the calls are (``MLP`` > ``Layer`` > ``Neuron``), so that
``draw(loss, collapse="Layer")`` shows a network layer by layer.  Entering
those scopes is on the hot path of training (micrograd's demo step makes
3,300 neuron calls), so it avoids context managers: a mode is set and reset
directly, and a layer sets each of its neurons' modes itself.
"""

from __future__ import annotations

import numbers
import operator
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from microgrannd import functions
from microgrannd.engine import Value
from microgrannd.modes import MODE, current_mode, enter_scope, mode_in, new_scope
from microgrannd.nn.init import Init, RngLike, draw, get_rng

__all__ = ["ACTIVATIONS", "MLP", "Activation", "Dropout", "Layer", "Module", "Neuron"]

Activation = str | Callable[[Value], Value] | None

ACTIVATIONS: dict[str, Callable[[Value], Value]] = {
    "relu": lambda v: v.relu(),
    "tanh": lambda v: v.tanh(),
    "sigmoid": functions.sigmoid,
    "sigmoid_fused": functions.sigmoid_fused,
    "leaky_relu": functions.leaky_relu,
    "softplus": functions.softplus,
}
"""Activations by name; ``None`` or ``"linear"`` means none."""

_NEURONS: weakref.WeakSet[Neuron] = weakref.WeakSet()
_set_mode = MODE.set  # (bound once: these run thousands of times a training step)
_reset_mode = MODE.reset


def live_parameters() -> set[Value]:
    """The weights and biases of every :class:`Neuron` alive (:func:`~microgrannd.draw` colours them as parameters)."""
    return {p for n in list(_NEURONS) for p in n.parameters()}


def _size(n: Any, what: str, minimum: int) -> int:
    """``n`` as an int of at least ``minimum``, or an error naming ``what``."""
    if isinstance(n, bool):
        raise TypeError(f"{what} must be an int, not a bool")
    try:
        k = operator.index(n)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(n).__name__}") from None
    if k < minimum:
        raise ValueError(f"{what} must be {minimum} or more, not {k}")
    return k


def _probability(p: Any, what: str) -> float:
    """``p`` as a float in [0, 1], or an error naming ``what``."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{what} must be a probability (a number in [0, 1]), not {type(p).__name__}")
    value = float(p)
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise ValueError(f"{what} must be a probability in [0, 1], not {p}")
    return value


def _inputs(x: Any, nin: int, who: str) -> Sequence[Any]:
    """``x`` as a sequence of exactly ``nin`` inputs, or a ValueError naming ``x``."""
    try:
        n = len(x)
    except TypeError:
        x = list(x) if isinstance(x, Iterable) else [x]
        n = len(x)
    if n != nin:
        raise ValueError(f"x must hold {nin} input{'' if nin == 1 else 's'} for {who}, not {n}")
    return x


def _resolve(activation: Activation) -> tuple[str, Callable[[Value], Value] | None]:
    """A display name and a function (``None`` for linear) for ``activation``."""
    if activation is None or activation == "linear":
        return "Linear", None
    if isinstance(activation, str):
        try:
            return activation, ACTIVATIONS[activation]
        except KeyError:
            choices = [*sorted(ACTIVATIONS), "linear"]
            raise ValueError(f"unknown activation {activation!r}; choose one of {choices}") from None
    if callable(activation):
        return getattr(activation, "__name__", "custom"), activation
    raise TypeError(f"activation must be a name, a callable or None, not {type(activation).__name__}")


class Module:
    """Base class: parameters, gradients and train/eval mode of a tree of modules.

    Sub-modules are found in the instance's attributes (a Module, or a list or
    tuple of them); subclasses holding their own Values override
    :meth:`parameters`.
    """

    training: bool = True

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in attribute order."""
        for value in vars(self).values():
            if isinstance(value, Module):
                yield value
            elif isinstance(value, (list, tuple)):
                yield from (m for m in value if isinstance(m, Module))

    def parameters(self) -> list[Value]:
        """Every trainable Value of this module and its sub-modules."""
        return [p for child in self.children() for p in child.parameters()]

    def zero_grad(self) -> None:
        """Set every parameter's ``grad`` to 0.0."""
        for p in self.parameters():
            p.grad = 0.0

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its sub-modules to training mode (or out of it)."""
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode (Dropout passes its input through)."""
        return self.train(False)


class Neuron(Module):
    """One unit: ``activation(w . x + b)``.

    ``nonlin=False`` makes it linear (micrograd's flag); ``activation`` names
    the non-linearity otherwise.  ``init`` and ``rng`` choose the initial
    weights (see :mod:`microgrannd.nn.init`); ``bias=False`` leaves out ``b``.
    """

    def __init__(
        self,
        nin: int,
        nonlin: bool = True,
        *,
        activation: Activation = "relu",
        init: Init = "fan_in",
        rng: RngLike = None,
        bias: bool = True,
    ) -> None:
        nin = _size(nin, "nin", 0)
        self._name, self._act = _resolve(activation if nonlin else None)
        w, b = draw(init, nin, get_rng(rng))
        self.w = [Value(x) for x in w]
        self.b: Value | None = Value(b) if bias else None
        self.nonlin = nonlin
        _NEURONS.add(self)

    def __call__(self, x: Sequence[Any]) -> Value:
        """The neuron's output for the inputs ``x`` (Values or numbers, exactly ``nin`` of them)."""
        if type(x) is not list or len(x) != len(self.w):
            x = _inputs(x, len(self.w), f"a Neuron({len(self.w)})")
        token = enter_scope(type(self).__name__)
        try:
            return self._output(x)
        finally:
            _reset_mode(token)

    def _output(self, x: Sequence[Any]) -> Value:
        """The output for ``nin`` inputs, recorded in the current scope."""
        terms = (wi * xi for wi, xi in zip(self.w, x, strict=True))
        act = sum(terms, self.b) if self.b is not None else sum(terms, 0.0)
        if not isinstance(act, Value):  # no weights and no bias
            act = Value(float(act), requires_grad=False)
        return self._act(act) if self._act is not None else act

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        return self.w + ([self.b] if self.b is not None else [])

    def __repr__(self) -> str:
        name = "ReLU" if self._name == "relu" else self._name
        return f"{name}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons reading the same ``nin`` inputs (keyword arguments go to each Neuron)."""

    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        self.nin = _size(nin, "nin", 0)
        nout = _size(nout, "nout", 1)
        rng = get_rng(kwargs.pop("rng", None))
        self.neurons = [Neuron(self.nin, rng=rng, **kwargs) for _ in range(nout)]

    def forward(self, x: Sequence[Any]) -> list[Value]:
        """The outputs as a list, whatever their number."""
        x = _inputs(x, self.nin, f"a Layer({self.nin}, {len(self.neurons)})")
        layer = new_scope(type(self).__name__, current_mode().scope)
        # This call's own mode; its scope moves from neuron to neuron, which costs far
        # less than setting and resetting a mode for each neuron (no one else holds it).
        mode = mode_in(current_mode(), layer)
        token = _set_mode(mode)
        try:
            out = []
            for n in self.neurons:
                if type(n) is Neuron:
                    mode.scope = new_scope("Neuron", layer)
                    out.append(n._output(x))
                else:
                    mode.scope = layer
                    out.append(n(x))
            return out
        finally:
            _reset_mode(token)

    def __call__(self, x: Sequence[Any]) -> Value | list[Value]:
        """The outputs: a Value for a one-neuron layer, else a list."""
        out = self.forward(x)
        return out[0] if len(out) == 1 else out

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class Dropout(Module):
    """Inverted dropout: in training mode, zero each input with probability ``p``
    and scale the others by ``1 / (1 - p)``; in eval mode, pass inputs through.
    """

    def __init__(self, p: float = 0.5, *, rng: RngLike = None) -> None:
        self.p = _probability(p, "p")
        self.rng = get_rng(rng)

    def __call__(self, x: Sequence[Any]) -> list[Any]:
        """``x`` with dropout applied (a new list; dropped entries are constant 0)."""
        if not self.training or self.p == 0.0:
            return list(x)
        if self.p == 1.0:
            return [Value(0.0, requires_grad=False) for _ in x]
        keep = 1.0 / (1.0 - self.p)
        rand = self.rng.random
        token = enter_scope(type(self).__name__)
        try:
            return [xi * keep if rand() >= self.p else Value(0.0, requires_grad=False) for xi in x]
        finally:
            _reset_mode(token)

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class MLP(Module):
    """A multi-layer perceptron: ``MLP(nin, nouts, activation="relu")``.

    ``nin`` is the number of inputs and ``nouts`` lists the layer widths
    (``[16, 16, 1]``: two hidden layers of 16, one output).  Hidden layers use ``activation``
    (``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"leaky_relu"``, or a callable);
    the last layer uses ``output_activation`` (default: linear).  ``dropout``
    inserts a :class:`Dropout` after every hidden layer.  ``init``, ``rng`` and
    ``bias`` are passed to every neuron.
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: Activation = "relu",
        *,
        output_activation: Activation = None,
        init: Init = "fan_in",
        rng: RngLike = None,
        bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        nin = _size(nin, "nin", 0)
        if isinstance(nouts, str | bytes) or not isinstance(nouts, Iterable):
            raise TypeError(f"nouts must be a list of layer widths, such as [16, 16, 1], not {type(nouts).__name__}")
        nouts = [_size(n, f"nouts[{i}]", 1) for i, n in enumerate(nouts)]
        if not nouts:
            raise ValueError("nouts must list at least one layer width, such as [16, 16, 1]")
        dropout = _probability(dropout, "dropout")
        generator = get_rng(rng)
        self.nin = nin
        sizes = [nin, *nouts]
        last = len(nouts) - 1
        self.layers: list[Layer] = [
            Layer(
                sizes[i],
                sizes[i + 1],
                nonlin=(i != last) or output_activation is not None,
                activation=activation if i != last else output_activation,
                init=init,
                rng=generator,
                bias=bias,
            )
            for i in range(len(nouts))
        ]
        self.dropouts = [Dropout(dropout, rng=generator) for _ in range(last)] if dropout > 0 else []

    def forward(self, x: Sequence[Any]) -> list[Value]:
        """The outputs as a list, whatever their number."""
        h = list(_inputs(x, self.nin, f"this MLP (nin={self.nin})"))
        token = enter_scope(type(self).__name__)
        try:
            for i, layer in enumerate(self.layers):
                h = layer.forward(h)
                if self.dropouts and i < len(self.dropouts):
                    h = self.dropouts[i](h)
            return h
        finally:
            _reset_mode(token)

    def __call__(self, x: Sequence[Any]) -> Value | list[Value]:
        """The network's output: a Value for one output, else a list."""
        out = self.forward(x)
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        """Every weight and bias, layer by layer."""
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
