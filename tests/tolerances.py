"""Float tolerances derived from the dtype and the size of a computation, never from what one
CPU printed.

Two float computations of the same quantity (different kernels, batch sizes, reduction orders,
AVX2 on one machine and AVX-512 on another) agree to a few units in the last place per rounding,
and rounding errors of n summed terms grow like √n when they are independent. So a comparison
of two such results uses ``float_tol(dtype, n_terms)`` as its relative tolerance and, where the
result can cancel to near zero, the same times the size of the terms as its absolute tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["close", "eps", "float_tol"]


def eps(dtype: torch.dtype | np.dtype | type) -> float:
    """Machine epsilon of a torch or numpy float dtype (float32: 1.19e-7, float64: 2.22e-16)."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)


def float_tol(dtype: torch.dtype | np.dtype | type, n_terms: int = 1, ulps: float = 4) -> float:
    """Relative tolerance for a result of ``n_terms`` rounded operations: ulps · eps · √n."""
    return ulps * eps(dtype) * math.sqrt(max(1, n_terms))


def close(
    dtype: torch.dtype | np.dtype | type, n_terms: int = 1, ulps: float = 4, scale: float = 1.0
) -> dict[str, float]:
    """``rtol``/``atol`` keywords for assert_close/assert_allclose: the relative tolerance of
    :func:`float_tol`, and the same times ``scale`` (the size of the summed terms) as absolute
    tolerance for entries that cancel to near zero."""
    tol = float_tol(dtype, n_terms, ulps)
    return {"rtol": tol, "atol": tol * scale}
