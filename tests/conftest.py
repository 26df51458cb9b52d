"""Test-session settings, applied before numpy is first imported.

* One BLAS thread: the networks here are tiny, and a multi-threaded BLAS on a shared
  2-core machine is several times slower, not faster. It also keeps results identical
  from run to run on one machine (thread count changes floating-point summation order).
* Matplotlib without a display.
"""
import os

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("MPLBACKEND", "Agg")
