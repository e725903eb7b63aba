"""microgrannd: a scalar reverse-mode autograd engine you can see and check."""

from microgrannd.autodiff import grad, value_and_grad
from microgrannd.compile import Compiled, TraceError, compile
from microgrannd.draw import draw
from microgrannd.engine import (
    Scope,
    Value,
    apply,
    composite,
    gc_paused,
    gradients,
    is_grad_enabled,
    no_grad,
    scope,
    toposort,
)
from microgrannd.functions import (
    exp,
    leaky_relu,
    log,
    reciprocal,
    relu,
    sigmoid,
    sigmoid_fused,
    softplus,
    tanh,
)
from microgrannd.ops import PRIMITIVES, DomainError, Primitive, ZeroDivisionDomainError
from microgrannd.tree import tree

__version__ = "0.1.0"

__all__ = [
    "Value",
    "Scope",
    "Primitive",
    "PRIMITIVES",
    "DomainError",
    "ZeroDivisionDomainError",
    "apply",
    "composite",
    "scope",
    "no_grad",
    "gc_paused",
    "is_grad_enabled",
    "toposort",
    "gradients",
    "grad",
    "value_and_grad",
    "exp",
    "log",
    "reciprocal",
    "relu",
    "tanh",
    "softplus",
    "sigmoid",
    "sigmoid_fused",
    "leaky_relu",
    "draw",
    "tree",
    "compile",
    "Compiled",
    "TraceError",
]
