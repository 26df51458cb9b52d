"""Trust regions beside PPO: the natural gradient and TRPO, on the same autodiff.

PPO's clipped ratio is a first-order stand-in for the constraint of TRPO (Schulman et al. 2015,
"Trust Region Policy Optimization", eqs. 12-14):

    maximise_theta  L(theta)  = mean_t [ pi_theta(a_t|s_t) / pi_old(a_t|s_t) * A_t ]
    subject to      KL(theta) = mean_t KL(pi_old(.|s_t) || pi_theta(.|s_t))  <=  delta.

Around theta_old, L(theta_old + s) ~ g^T s and KL(theta_old + s) ~ 1/2 s^T F s, where g is the
policy gradient and F the Fisher information matrix (the Hessian of the mean KL at theta_old; the
KL and its gradient are both zero there). Maximising the linear model inside the quadratic one
gives the natural-gradient direction x = F^{-1} g (Amari 1998; Kakade 2001), scaled so the model
KL equals delta:

    s = sqrt(2 delta / (x^T F x)) * x.

F is P x P for P policy parameters and is never formed: conjugate gradient solves F x = g from
Fisher-vector products alone (`fisher_vector_product`), and a backtracking line search then checks
each candidate step against the *exact* KL, because the quadratic model is only a model.

Conventions (where implementations disagree):
* KL direction: KL(pi_old || pi_new), averaged over the batch states (as TRPO's paper and code).
* F is the Fisher of the mean KL, i.e. divided by the batch size B, so delta is a per-state KL.
* Damping: F + damping*I is what CG inverts (Schulman's code uses 0.1); the step length is set
  with the damped F too, and the line search's KL test uses the exact, undamped KL.
* The line search accepts the first step fraction with surrogate improvement > 0 and KL <= delta
  (the original code also asks for 10% of the predicted improvement; we keep only the constraint
  the paper states). A step that fails every fraction is not taken.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_conjugate_gradient, check_finite, check_obs, check_scalars
from .autodiff import Tensor, no_grad
from .distributions import Categorical, DiagGaussian
from .losses import policy_gradient_surrogate

__all__ = ["policy_parts", "flat_params", "set_flat_params", "fisher_operator",
           "fisher_vector_product", "conjugate_gradient", "trpo_step", "natural_gradient_step"]


# ----- the policy as a flat parameter vector ----------------------------------------------------

def policy_parts(policy):
    """(mlp, log_std or None, params) of an ActorCritic-like agent or of a bare MLP.

    An agent is anything with `.pi` (an MLP whose output is the Categorical logits (B, A) or the
    Gaussian mean (B, D)) and `.log_std` (a Tensor (D,) or None); its value network is ignored.
    A bare MLP (anything with `.layers`) is read as a Categorical policy over its output logits.
    params is the list theta is flattened from: the MLP's [W0, b0, W1, b1, ...], then log_std.
    """
    if hasattr(policy, "pi"):
        mlp, log_std = policy.pi, getattr(policy, "log_std", None)
    elif hasattr(policy, "layers"):
        mlp, log_std = policy, None
    else:
        raise TypeError(f"policy: expected an agent with .pi or an MLP with .layers, "
                        f"got {type(policy).__name__}")
    params = list(mlp.parameters()) + ([log_std] if log_std is not None else [])
    return mlp, log_std, params


def flat_params(params) -> np.ndarray:
    """theta: every parameter raveled and concatenated, in order, as one float64 vector (P,)."""
    return np.concatenate([np.ravel(p.data).astype(np.float64) for p in params])


def _split(flat: np.ndarray, params) -> list:
    """The inverse of flat_params: one array per parameter, each in its parameter's shape."""
    sizes = [p.data.size for p in params]
    if flat.shape != (sum(sizes),):
        raise ValueError(f"flat vector has shape {flat.shape}, the policy has {sum(sizes)} "
                         f"parameters, so it must have shape ({sum(sizes)},)")
    cuts = np.cumsum(sizes)[:-1]
    return [piece.reshape(p.data.shape) for piece, p in zip(np.split(flat, cuts), params)]


def set_flat_params(params, flat) -> None:
    """Write theta back into the parameters, in place (each keeps its own dtype)."""
    for p, piece in zip(params, _split(np.asarray(flat, dtype=np.float64), params)):
        p.data[...] = piece


def _distribution(mlp, log_std, obs):
    """pi_theta(.|s) for a batch of states: Categorical(logits) or DiagGaussian(mean, log_std)."""
    out = mlp(obs)
    return Categorical(out) if log_std is None else DiagGaussian(out, log_std)


# ----- Fisher-vector products --------------------------------------------------------------------

def _mlp_jvp(mlp, obs, tangents):
    """Forward-mode derivative of the MLP output along a parameter direction (dW_k, db_k).

    With h_0 = x (a constant, so dh_0 = 0), layer by layer:

        z_k = h_{k-1} W_k + b_k          dz_k = dh_{k-1} W_k + h_{k-1} dW_k + db_k
        h_k = act(z_k)                   dh_k = act'(z_k) * dz_k
                                               (tanh' = 1 - tanh^2, relu' = [z > 0], as autodiff)

    and the output (no activation on the last layer) is z_L with derivative dz_L = J v, (B, out).
    """
    activation = getattr(mlp, "activation", "tanh")
    h, dh = obs, np.zeros((obs.shape[0], mlp.layers[0].weight.shape[0]), dtype=np.float64)
    last = len(mlp.layers) - 1
    for k, layer in enumerate(mlp.layers):
        dW, db = tangents[2 * k], tangents[2 * k + 1]
        W, b = layer.weight.data, layer.bias.data
        z, dz = h @ W + b, dh @ W + h @ dW + db
        if k == last:
            return dz
        if activation == "tanh":
            h = np.tanh(z)
            dh = (1.0 - h * h) * dz
        elif activation == "relu":
            h = np.maximum(z, 0.0)
            dh = (z > 0) * dz
        else:
            raise ValueError(f"fisher_vector_product: unsupported MLP activation {activation!r}")


def fisher_operator(policy, obs, damping: float = 0.0):
    """The map v -> (F + damping*I) v at the current parameters, for a fixed batch of states.

    F is the Hessian of mean_b KL(pi_old(.|s_b) || pi_theta(.|s_b)) at theta = theta_old. Let
    u_b = f_theta(s_b) be the network output (logits or Gaussian mean) and J_b = du_b/dtheta. The
    KL's gradient in u is zero at u_old, so the term with d^2u/dtheta^2 vanishes and the
    Gauss-Newton form is exact (Martens 2014, "New insights and perspectives on the natural
    gradient method", sec. 9):

        F v = (1/B) sum_b J_b^T F_dist,b J_b v

    with the distribution's Fisher in closed form:
        Categorical over logits:  F_dist = diag(p) - p p^T,  so F_dist w = p*w - p (p . w)
        DiagGaussian:             1/sigma^2 on each mean, 2 on each log_std, no cross terms
                                  (KL(N(m, s0) || N(m, e^l)) has second derivative 2 in l at s0).
    J v comes from a forward-mode pass (`_mlp_jvp`); J^T(.) from one reverse-mode pass of the
    autodiff, with the upstream gradient F_dist J v / B. The forward graph is built once here and
    reused for every product, which is what makes conjugate gradient cheap.
    """
    mlp, log_std, params = policy_parts(policy)
    obs, (damping,) = check_obs(mlp, obs), check_scalars(damping=damping)
    B = obs.shape[0]
    net_params = params[:len(params) - (log_std is not None)]
    out = mlp(Tensor(obs))                      # graph kept for the J^T pass
    if not out.requires_grad:
        raise RuntimeError("fisher_operator: the policy output carries no graph; call it with "
                           "gradients enabled and parameters with requires_grad=True")
    if log_std is None:
        z = out.data - out.data.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)        # (B, A)
    else:
        inv_var = np.exp(-2.0 * np.asarray(log_std.data, dtype=np.float64))  # (D,)

    def apply(v):
        v = np.asarray(v, dtype=np.float64)
        pieces = _split(v, params)
        check_finite("v", v)
        Jv = _mlp_jvp(mlp, obs, pieces[:len(net_params)])               # (B, out)
        if log_std is None:
            w = probs * Jv - probs * (probs * Jv).sum(axis=1, keepdims=True)
        else:
            w = inv_var * Jv
        saved = [p.grad for p in net_params]    # leave the caller's gradients untouched
        for p in net_params:
            p.grad = None
        try:
            out.backward(w / B)
            result = [np.zeros(p.data.shape) if p.grad is None else p.grad.astype(np.float64)
                      for p in net_params]
        finally:
            for p, g in zip(net_params, saved):
                p.grad = g
        if log_std is not None:
            # log_std is shared by every state: J_b = I on it, so (1/B) sum_b 2 v_l = 2 v_l.
            result.append(2.0 * pieces[-1])
        return np.concatenate([r.ravel() for r in result]) + damping * v
    return apply


def fisher_vector_product(policy, obs, v, damping: float = 0.0) -> np.ndarray:
    """(F + damping*I) v, F the Fisher of the mean KL over the states obs (B, obs_dim); see
    `fisher_operator`. v and the result are flat over the policy parameters (P,)."""
    return fisher_operator(policy, obs, damping)(v)


# ----- conjugate gradient --------------------------------------------------------------------------

def conjugate_gradient(Avp, b, iters: int = 10, tol: float = 1e-10) -> np.ndarray:
    """Solve A x = b for a symmetric positive-definite A known only through x -> A x
    (Hestenes & Stiefel 1952), stopping after `iters` products or once r.r <= tol (the squared
    residual norm, as in the TRPO code). In exact arithmetic it solves a P x P system in P
    steps; TRPO uses about 10. From x_0 = 0, r_0 = p_0 = b:

        alpha_k = r_k.r_k / p_k.A p_k
        x_{k+1} = x_k + alpha_k p_k,      r_{k+1} = r_k - alpha_k A p_k
        beta_k  = r_{k+1}.r_{k+1} / r_k.r_k,   p_{k+1} = r_{k+1} + beta_k p_k
    """
    b, iters, tol = check_conjugate_gradient(b, iters, tol)
    x = np.zeros_like(b)
    r, p = b.copy(), b.copy()
    rr = r @ r
    for k in range(iters):
        if rr <= tol:     # converged (with tol = 0: only an exact solution stops early)
            break
        Ap = np.asarray(Avp(p), dtype=np.float64)
        if Ap.shape != b.shape:
            raise ValueError(f"Avp returned shape {Ap.shape}, expected {b.shape}")
        pAp = p @ Ap
        if not pAp > 0:
            raise ValueError(f"conjugate_gradient: p.Ap = {pAp} <= 0 at iteration {k}; "
                             f"A is not positive definite (add damping)")
        alpha = rr / pAp
        x += alpha * p
        r -= alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


# ----- TRPO and the natural gradient --------------------------------------------------------------

def _natural_direction(policy, obs, actions, advantages, logp_old, cg_iters, damping):
    """What both steps share: theta_old, g, x = F^{-1} g, F x, and closures to measure a step."""
    mlp, log_std, params = policy_parts(policy)
    obs, (cg_iters,) = check_obs(mlp, obs), check_scalars(cg_iters=cg_iters)
    B = obs.shape[0]
    advantages = np.asarray(advantages, dtype=np.float64)
    if advantages.shape != (B,):
        raise ValueError(f"advantages: expected shape ({B},) to match obs {obs.shape}, "
                         f"got {advantages.shape}")
    with no_grad():  # pi_old, frozen: copies, since set_flat_params writes theta in place
        out_old = np.array(mlp(Tensor(obs)).data)
        old = (Categorical(out_old) if log_std is None
               else DiagGaussian(out_old, np.array(log_std.data)))
        if logp_old is None:
            logp_old = old.log_prob(actions).data
    logp_old = np.asarray(logp_old, dtype=np.float64)
    if logp_old.shape != (B,):
        raise ValueError(f"logp_old: expected shape ({B},), got {logp_old.shape}")

    def surrogate():
        """L(theta) = mean(ratio * A), the quantity TRPO maximises (a Tensor, with graph)."""
        logp = _distribution(mlp, log_std, obs).log_prob(actions)
        return -policy_gradient_surrogate(logp, logp_old, advantages)

    def measure():
        """(L(theta), mean KL(pi_old || pi_theta)) at the current parameters, exactly."""
        with no_grad():
            new = _distribution(mlp, log_std, obs)
            L = -policy_gradient_surrogate(new.log_prob(actions), logp_old, advantages)
            return float(L.item()), float(np.mean(old.kl(new).data))

    theta_old = flat_params(params)
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        L = surrogate()
        L.backward()
        g = np.concatenate([(np.zeros(p.data.size) if p.grad is None else p.grad.ravel())
                            for p in params]).astype(np.float64)
    finally:
        for p, gr in zip(params, saved):
            p.grad = gr
    Fvp = fisher_operator(policy, obs, damping)
    x = conjugate_gradient(Fvp, g, iters=cg_iters)
    Fx = Fvp(x)
    return params, theta_old, float(L.item()), g, x, Fx, measure


def trpo_step(policy, obs, actions, advantages, logp_old=None, *, max_kl: float = 0.01,
              cg_iters: int = 10, damping: float = 0.1, backtrack_coef: float = 0.5,
              max_backtracks: int = 10) -> dict:
    """One TRPO policy update on a batch, in place (Schulman et al. 2015, eqs. 12-14, solved
    as in its Appendix C): maximise L(theta) subject to mean KL(pi_old || pi_theta) <= max_kl.

    obs (B, obs_dim), actions (B,) or (B, D), advantages (B,); logp_old (B,) defaults to the
    current policy's log-probabilities (the on-policy case). Returns floats: kl (measured, of the
    step taken), improvement (of L), expected_improvement (g.s of the full step), step_fraction
    (backtrack_coef^k accepted, 0 if none), accepted (bool), backtracks (k), surrogate_before,
    grad_norm, cg_residual (|F x - g|).

    1. g = grad L(theta_old);  x = F^{-1} g by `cg_iters` steps of conjugate gradient.
    2. The full step s = sqrt(2 max_kl / x^T F x) x, the largest with 1/2 s^T F s = max_kl.
    3. Backtracking: theta = theta_old + backtrack_coef^k s for k = 0, 1, ..., max_backtracks-1,
       accepting the first with L(theta) - L(theta_old) > 0 and the exact
       mean KL(pi_old || pi_theta) <= max_kl; if none passes, theta stays theta_old. A candidate
       so far out that its distribution is not finite (overflowing logits) counts as failed.
    """
    max_kl, backtrack_coef, max_backtracks = check_scalars(
        max_kl=max_kl, backtrack_coef=backtrack_coef, max_backtracks=max_backtracks)
    params, theta_old, L_old, g, x, Fx, measure = _natural_direction(        # 1.
        policy, obs, actions, advantages, logp_old, cg_iters, damping)
    xFx = float(x @ Fx)
    info = {"kl": 0.0, "improvement": 0.0, "expected_improvement": 0.0, "step_fraction": 0.0,
            "accepted": False, "backtracks": int(max_backtracks), "surrogate_before": L_old,
            "grad_norm": float(np.linalg.norm(g)), "cg_residual": float(np.linalg.norm(Fx - g))}
    if not xFx > 0:                              # g == 0: nothing to climb
        return info
    step = np.sqrt(2.0 * max_kl / xFx) * x                                   # 2.
    info["expected_improvement"] = float(g @ step)
    try:
        for k in range(max_backtracks):                                        # 3.
            frac = backtrack_coef ** k
            set_flat_params(params, theta_old + frac * step)
            try:
                L_new, kl = measure()
            except ValueError:   # non-finite logits/mean at this candidate: reject, shrink
                continue
            improvement = L_new - L_old
            if np.isfinite(L_new) and np.isfinite(kl) and improvement > 0 and kl <= max_kl:
                info.update(kl=kl, improvement=improvement, step_fraction=frac, accepted=True,
                            backtracks=k)
                return info
    except BaseException:
        set_flat_params(params, theta_old)       # never leave a half-tried step behind
        raise
    set_flat_params(params, theta_old)           # every fraction failed: keep the old policy
    return info


def natural_gradient_step(policy, obs, actions, advantages, logp_old=None, *,
                          step_size: float = 0.1, cg_iters: int = 10,
                          damping: float = 0.1) -> dict:
    """The natural policy gradient (Kakade 2001): theta <- theta + step_size * F^{-1} g, in place,
    with no trust region. For comparison with `trpo_step`: the model KL of this step is
    1/2 step_size^2 x^T F x, which grows with |g| however far the quadratic model is from the
    truth. Same arguments as trpo_step; returns floats kl (measured), predicted_kl, improvement,
    surrogate_before, grad_norm, cg_residual.
    """
    (step_size,) = check_scalars(step_size=step_size)
    params, theta_old, L_old, g, x, Fx, measure = _natural_direction(
        policy, obs, actions, advantages, logp_old, cg_iters, damping)
    set_flat_params(params, theta_old + step_size * x)
    try:
        L_new, kl = measure()
    except BaseException:        # e.g. logits overflowed: put theta_old back before raising
        set_flat_params(params, theta_old)
        raise
    return {"kl": kl, "predicted_kl": float(0.5 * step_size ** 2 * (x @ Fx)),
            "improvement": L_new - L_old, "surrogate_before": L_old,
            "grad_norm": float(np.linalg.norm(g)), "cg_residual": float(np.linalg.norm(Fx - g))}
