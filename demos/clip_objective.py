"""The clipped objective as a picture (Schulman et al. 2017, Figure 1 and Section 4).

For one sample with probability ratio r = pi_new(a|s) / pi_old(a|s) and advantage A,

    L^CLIP(r)   = min(r A, clip(r, 1 - eps, 1 + eps) A)                      (paper eq. 7)
    L^KLPEN(r)  = r A - beta KL(pi_old(.|s) || pi_new(.|s))                   (paper eq. 8)

Every curve is computed by ppo_ref.losses (the negated loss of a batch of one), and the flat
regions are where autodiff returns an exactly-zero gradient dL/dr: once r has moved past 1 + eps in
the direction A favours, the sample stops pulling the policy. The KL penalty needs a whole action
distribution, not just r: we take two actions with pi_old = (p0, 1 - p0) and let pi_new give the
sampled action probability r p0 (so r < 1 / p0), and measure KL with Categorical.kl.

    python demos/clip_objective.py --out out/clip_objective
"""
from __future__ import annotations

import _common  # noqa: F401  (puts the repository on sys.path)

import numpy as np

from ppo_ref.autodiff import Tensor
from ppo_ref.distributions import Categorical
from ppo_ref.losses import clipped_surrogate, kl_penalty_surrogate

CLIP_EPS = 0.2
P_OLD = 0.4                      # pi_old of the sampled action; r ranges over (0, 1 / P_OLD)
BETAS = (0.3, 1.0, 3.0, 10.0)    # KL penalty coefficients to compare


def _value(x):
    """The array inside a Tensor (losses return Tensors only when given one; arrays pass through)."""
    return x.data if isinstance(x, Tensor) else x


def clip_objective_and_slope(r: float, advantage: float, clip_eps: float = CLIP_EPS):
    """L^CLIP(r) for one sample and its derivative dL/dr, both from ppo_ref.losses + autodiff."""
    logp_new = Tensor(np.array([np.log(r)]), requires_grad=True)
    loss = clipped_surrogate(logp_new, np.zeros(1), np.array([advantage]), clip_eps=clip_eps)
    loss.backward()
    # The graph differentiates w.r.t. log r; dL/dr = dL/dlog r / r. The loss is -L^CLIP.
    return -loss.item(), -logp_new.grad[0] / r


def two_action_kl(r: np.ndarray, p_old: float = P_OLD) -> np.ndarray:
    """KL(pi_old || pi_new) for pi_old = (p0, 1-p0), pi_new = (r p0, 1 - r p0), one value per r."""
    old = Categorical(np.log(np.tile([p_old, 1.0 - p_old], (len(r), 1))))
    new = Categorical(np.log(np.stack([r * p_old, 1.0 - r * p_old], axis=1)))
    return np.asarray(_value(old.kl(new)))


def kl_penalty_objective(r: np.ndarray, advantage: float, beta: float) -> np.ndarray:
    """L^KLPEN(r) per sample: the negated kl_penalty_surrogate of a batch of one, for each r."""
    kl = two_action_kl(r)
    return np.array([-float(_value(kl_penalty_surrogate(
        np.array([np.log(ri)]), np.zeros(1), np.array([advantage]), np.array([kli]), beta)))
        for ri, kli in zip(r, kl)])


def flat_intervals(r: np.ndarray, slope: np.ndarray):
    """The [r_lo, r_hi] runs of grid points where the gradient is exactly zero."""
    flat = slope == 0.0
    intervals, start = [], None
    for i, is_flat in enumerate(flat):
        if is_flat and start is None:
            start = i
        if start is not None and (not is_flat or i == len(flat) - 1):
            end = i if is_flat else i - 1
            intervals.append([float(r[start]), float(r[end])])
            start = None
    return intervals


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    import matplotlib.pyplot as plt

    n_points = 121 if args.quick else 481
    r = np.linspace(0.02, 1.0 / P_OLD - 0.02, n_points)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    result = {"clip_eps": CLIP_EPS, "p_old": P_OLD, "r": r, "clip": {}, "kl_penalty": {}}

    for col, advantage in enumerate((1.0, -1.0)):
        sign = "A > 0" if advantage > 0 else "A < 0"
        values, slopes = zip(*(clip_objective_and_slope(ri, advantage) for ri in r))
        values, slopes = np.array(values), np.array(slopes)
        flats = flat_intervals(r, slopes)
        result["clip"][f"A={advantage:+g}"] = {"L_clip": values, "dL_dr": slopes,
                                                "zero_gradient_intervals": flats}
        ax = axes[0, col]
        ax.plot(r, r * advantage, "--", color="0.6", label="unclipped  r A")
        ax.plot(r, values, color="C0", lw=2.2, label=r"$L^{CLIP}$ = min(r A, clip(r, 1-ε, 1+ε) A)")
        for lo, hi in flats:
            ax.axvspan(lo, hi, color="C1", alpha=0.15,
                       label="flat: gradient exactly 0" if lo == flats[0][0] else None)
        ax.axvline(1.0, color="k", lw=0.6, ls=":")
        for edge in (1 - CLIP_EPS, 1 + CLIP_EPS):
            ax.axvline(edge, color="C1", lw=0.8, ls=":")
        ax.set_title(f"{sign}: past r = {1 + CLIP_EPS if advantage > 0 else 1 - CLIP_EPS:g} "
                     f"the sample stops pushing (flat, zero gradient)", fontsize=10)
        ax.set_ylabel("per-sample objective (units of A)")
        ax.legend(loc="upper left" if advantage > 0 else "upper right", fontsize=8)

        ax = axes[1, col]
        ax.plot(r, r * advantage, "--", color="0.6", label="β = 0  (r A)")
        result["kl_penalty"][f"A={advantage:+g}"] = {}
        for k, beta in enumerate(BETAS):
            obj = kl_penalty_objective(r, advantage, beta)
            best = int(np.argmax(obj))
            result["kl_penalty"][f"A={advantage:+g}"][f"beta={beta:g}"] = {
                "L_klpen": obj, "argmax_r": float(r[best])}
            ax.plot(r, obj, color=f"C{k + 2}", lw=1.8, label=f"β = {beta:g}  (max at r = {r[best]:.2f})")
            ax.plot(r[best], obj[best], "o", color=f"C{k + 2}", ms=5)
        ax.axvline(1.0, color="k", lw=0.6, ls=":")
        ax.set_ylim(-3.0, 2.6)
        ax.set_title(f"{sign}: never flat; a larger β keeps the optimum nearer r = 1", fontsize=10)
        ax.set_xlabel(r"probability ratio r = $\pi_{new}(a|s)\,/\,\pi_{old}(a|s)$  (dimensionless)")
        ax.set_ylabel(r"$L^{KLPEN}$ = r A − β KL  (units of A)")
        ax.legend(loc="lower center", fontsize=8)

    fig.suptitle(f"PPO's surrogate objectives for one sample (ε = {CLIP_EPS}, KL for two actions, "
                 f"π_old(a|s) = {P_OLD})", fontsize=12)
    fig.tight_layout()
    _common.save_figure(fig, args.out / "clip_objective.png")
    _common.save_json(result, args.out / "clip_objective.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
