"""Property-testing derivatives: a gradient checker, and hypothesis strategies.

``from microgrannd.testing import check_grad`` needs nothing beyond
microgrannd itself.  The hypothesis strategies live in
:mod:`microgrannd.testing.strategies` and need the ``testing`` extra
(``pip install microgrannd[testing]``).
"""

from microgrannd.testing.gradcheck import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    GradcheckError,
    NumericallyUnreliable,
    check_grad,
    check_grad2,
    numerical_grad,
)

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "GradcheckError",
    "NumericallyUnreliable",
    "check_grad",
    "check_grad2",
    "numerical_grad",
]
