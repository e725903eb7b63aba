"""microgrannd: a scalar reverse-mode autograd engine you can see and check."""

from microgrannd.autodiff import grad, hessian, hvp, jvp, value_and_grad
from microgrannd.compile import Compiled, TraceError, compile
from microgrannd.draw import draw
from microgrannd.engine import Value
from microgrannd.explore import explore
from microgrannd.functions import (
    abs,
    apply,
    cos,
    exp,
    gather,
    leaky_relu,
    log,
    reciprocal,
    relu,
    sigmoid,
    sigmoid_fused,
    sin,
    softplus,
    sqrt,
    stop_gradient,
    tanh,
)
from microgrannd.modes import (
    Scope,
    composite,
    enable_grad,
    gc_paused,
    is_grad_enabled,
    no_grad,
    scope,
)
from microgrannd.ops import PRIMITIVES, DomainError, Primitive, ZeroDivisionDomainError
from microgrannd.tree import tree
from microgrannd.walk import gradients, toposort

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
    "enable_grad",
    "gc_paused",
    "is_grad_enabled",
    "toposort",
    "gradients",
    "grad",
    "value_and_grad",
    "jvp",
    "hvp",
    "hessian",
    "exp",
    "log",
    "reciprocal",
    "relu",
    "tanh",
    "softplus",
    "sigmoid",
    "sigmoid_fused",
    "leaky_relu",
    "sin",
    "cos",
    "sqrt",
    "abs",
    "stop_gradient",
    "gather",
    "draw",
    "explore",
    "tree",
    "compile",
    "Compiled",
    "TraceError",
]
