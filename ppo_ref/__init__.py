"""ppo_ref: a numpy-only reference implementation of Proximal Policy Optimization.

Read in this order (each module states its equations above the lines that compute them):

    ppo.py            PPO in one file: the whole algorithm, top to bottom (read this first)
    gae.py            generalised advantage estimation (Schulman et al. 2016, eq. 11 and 16)
    losses.py         the surrogate objectives, value loss, entropy, KL estimators, KL controllers
    distributions.py  the policies' distributions: Categorical, diagonal Gaussian, and the
                      MultiCategorical and Bernoulli of MultiDiscrete and MultiBinary actions
    autodiff.py       reverse-mode automatic differentiation, one primitive at a time
    optim.py          Adam, global gradient-norm clipping, linear schedules
    train/            the full trainer: the same algorithm with presets, continuous actions,
                      normalisation, run folders, checkpoints and exact resume

Beside PPO: trpo.py (the trust-region problem PPO approximates) and rlhf/ (RLHF in miniature).
The conformance kit that checks other implementations against these equations is spec/;
stats.py and compare.py say with statistics whether two sets of runs learn alike.

    >>> from ppo_ref import PPOConfig, train, evaluate
    >>> result = train(PPOConfig(total_steps=20_000))
    >>> evaluate(result.agent, "CartPole-v1", episodes=5)["mean_return"]

Note that `ppo_ref.train` is the function above; the subpackage's modules are imported by their
full names (`from ppo_ref.train.rollout import make_vec_env`).
"""
import os
import sys

__version__ = "0.1.0"


def single_threaded_blas() -> None:
    """One BLAS thread unless the user chose otherwise (OPENBLAS/OMP/MKL_NUM_THREADS).

    At the sizes used here (64-wide layers, batches of a few hundred rows) one thread is faster
    than several, and on a busy machine several are many times slower. It also keeps results
    bit-identical from run to run (the thread count changes BLAS's summation order). BLAS reads
    these variables when numpy is first imported, so this runs here, before anything imports
    numpy; a program that imported numpy before ppo_ref keeps its BLAS as it is, and its
    environment (which child processes inherit) is left alone too."""
    if "numpy" in sys.modules:
        return
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


single_threaded_blas()

from .train import PPOConfig, PRESETS, TrainResult, evaluate, load_agent, train  # noqa: E402

__all__ = ["PPOConfig", "PRESETS", "TrainResult", "train", "evaluate", "load_agent"]
