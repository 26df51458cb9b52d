"""Test-session settings, applied before anything imports numpy.

* One BLAS thread, by importing ppo_ref first (ppo_ref.single_threaded_blas): the networks here
  are tiny, and a multi-threaded BLAS on a shared 2-core machine is several times slower, not
  faster. It also keeps results identical from run to run on one machine (the thread count
  changes floating-point summation order).
* Matplotlib without a display.
"""
import os

import ppo_ref  # noqa: F401  (pins BLAS to one thread; it must run before numpy loads)

os.environ.setdefault("MPLBACKEND", "Agg")
