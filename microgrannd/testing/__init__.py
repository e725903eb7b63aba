"""Property-testing derivatives: a gradient checker, a primitive checker, and hypothesis strategies.

``from microgrannd.testing import check_grad, check_primitive`` needs nothing
beyond microgrannd itself (``check_primitive``'s random expressions use
hypothesis when it is installed).  The hypothesis strategies live in
:mod:`microgrannd.testing.strategies` and need the ``testing`` extra
(``pip install microgrannd[testing]``).
"""

from microgrannd.testing.gradcheck import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    ORACLES,
    PATHS,
    GradcheckError,
    GradcheckReport,
    Gradient,
    NumericallyUnreliable,
    check_grad,
    check_grad2,
    numerical_grad,
)
from microgrannd.testing.primitive import PrimitiveCheck, check_primitive

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "ORACLES",
    "PATHS",
    "GradcheckError",
    "GradcheckReport",
    "Gradient",
    "NumericallyUnreliable",
    "PrimitiveCheck",
    "check_grad",
    "check_grad2",
    "check_primitive",
    "numerical_grad",
]
