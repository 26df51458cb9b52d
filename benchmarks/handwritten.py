"""A hand-written numpy PPO minibatch step: the speed limit for ppo_ref's update phase.

It does the same work as one minibatch of `ppo.ppo_update` with the clip objective and a
discrete (Categorical) policy: the forward pass of the policy and value MLPs (tanh hidden
layers), advantage normalisation, the clipped surrogate, the 0.5 * mean (V - R)^2 value loss
and the entropy bonus, their gradients derived by hand (no autodiff, no graph), a global
gradient-norm clip and one Adam step over a single flat parameter vector.

It is written without ppo_ref's autodiff on purpose, so that
    update_efficiency = ppo_ref's update samples/s / this step's samples/s
measures what the autodiff costs (`python -m benchmarks.bench`). It is a benchmark baseline,
not part of the library's API; tests/test_bench.py checks its gradients against the autodiff.

Gradients, for B samples, logits z (B, A), p = softmax(z), r = exp(logp - logp_old):
    clipped surrogate  dL/dlogp_i = -A_i r_i / B where the unclipped term is the smaller
                       (or 1 - eps <= r_i <= 1 + eps: ties split as in losses.py), else 0
    log-prob           dlogp_i/dz_ij = [j = a_i] - p_ij
    entropy bonus      d(-c mean H)/dz_ij = c / B * p_ij (log p_ij + H_i)
    value loss         d(c * 0.5 mean (V - R)^2)/dV_i = c (V_i - R_i) / B
    tanh layer         dz = dh * (1 - h^2), with h = tanh(z)
"""
from __future__ import annotations

import numpy as np

__all__ = ["HandwrittenPPO", "normalized", "loss_head"]


class HandwrittenPPO:
    """Two tanh MLPs (policy: obs -> hidden -> n_actions, value: obs -> hidden -> 1) whose
    weights (in, out) and biases are views into one flat buffer, as are their gradients."""

    def __init__(self, obs_dim, n_actions, hidden=(64, 64), dtype=np.float64, seed=0,
                 lr=3e-4, clip_eps=0.2, vf_coef=0.5, ent_coef=0.0, max_grad_norm=0.5,
                 norm_adv=True, adam_eps=1e-8):
        rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        shapes = []
        for out in (n_actions, 1):
            sizes = [obs_dim, *hidden, out]
            shapes.append([((a, b), (b,)) for a, b in zip(sizes[:-1], sizes[1:])])
        total = sum(int(np.prod(w)) + int(np.prod(b)) for net in shapes for w, b in net)
        self.flat = np.zeros(total, dtype=self.dtype)
        self.grad = np.zeros(total, dtype=self.dtype)
        self.m = np.zeros(total, dtype=self.dtype)
        self.v = np.zeros(total, dtype=self.dtype)
        self.t = 0
        self.nets, self.grads = [], []
        offset = 0
        for net in shapes:
            layers, glayers = [], []
            for w_shape, b_shape in net:
                n_w, n_b = int(np.prod(w_shape)), int(np.prod(b_shape))
                W = self.flat[offset:offset + n_w].reshape(w_shape)
                gW = self.grad[offset:offset + n_w].reshape(w_shape)
                offset += n_w
                b = self.flat[offset:offset + n_b]
                gb = self.grad[offset:offset + n_b]
                offset += n_b
                W[...] = rng.standard_normal(w_shape) / np.sqrt(w_shape[0])
                layers.append((W, b))
                glayers.append((gW, gb))
            self.nets.append(layers)
            self.grads.append(glayers)
        self.lr, self.clip_eps, self.vf_coef, self.ent_coef = lr, clip_eps, vf_coef, ent_coef
        self.max_grad_norm, self.norm_adv, self.adam_eps = max_grad_norm, norm_adv, adam_eps

    def load_agent_state(self, state: dict) -> None:
        """Copy an ActorCritic.state_dict() ("pi.layers.0.weight", ..., "vf.layers.0.bias")
        into the flat buffer, so both compute on the same weights."""
        for prefix, layers in (("pi", self.nets[0]), ("vf", self.nets[1])):
            for i, (W, b) in enumerate(layers):
                W[...] = state[f"{prefix}.layers.{i}.weight"]
                b[...] = state[f"{prefix}.layers.{i}.bias"]

    @staticmethod
    def _forward(layers, x):
        acts = [x]
        for i, (W, b) in enumerate(layers):
            z = acts[-1] @ W + b
            acts.append(np.tanh(z) if i < len(layers) - 1 else z)
        return acts

    @staticmethod
    def _backward(layers, glayers, acts, g_out):
        g = g_out
        for i in range(len(layers) - 1, -1, -1):
            W, _ = layers[i]
            gW, gb = glayers[i]
            np.matmul(acts[i].T, g, out=gW)
            gb[...] = g.sum(axis=0)
            if i > 0:
                g = (g @ W.T) * (1.0 - acts[i] * acts[i])  # tanh' = 1 - tanh^2

    def loss_and_grad(self, obs, actions, logp_old, advantages, returns) -> float:
        """The PPO loss of one minibatch; its gradient is written into self.grad (flat)."""
        pi_acts = self._forward(self.nets[0], obs)
        v_acts = self._forward(self.nets[1], obs)
        adv = normalized(advantages) if self.norm_adv else advantages
        head = loss_head(pi_acts[-1], v_acts[-1][:, 0], actions, logp_old, adv, returns,
                         self.clip_eps, self.vf_coef, self.ent_coef)
        self._backward(self.nets[0], self.grads[0], pi_acts, head["g_logits"])
        self._backward(self.nets[1], self.grads[1], v_acts, head["g_values"][:, None])
        return head["loss"]

    def step(self, obs, actions, logp_old, advantages, returns) -> float:
        """One minibatch: loss and hand-derived gradients, global norm clip, Adam. Returns the
        gradient norm before clipping."""
        self.loss_and_grad(obs, actions, logp_old, advantages, returns)
        norm = float(np.sqrt(self.grad @ self.grad))
        coef = self.max_grad_norm / (norm + 1e-6)       # torch's clip_grad_norm_
        if coef < 1.0:
            self.grad *= coef
        self.t += 1
        b1, b2 = 0.9, 0.999
        self.m *= b1
        self.m += (1 - b1) * self.grad
        self.v *= b2
        self.v += (1 - b2) * self.grad * self.grad
        step = self.lr / (1 - b1 ** self.t)
        self.flat -= step * self.m / (np.sqrt(self.v / (1 - b2 ** self.t)) + self.adam_eps)
        return norm


def normalized(advantages):
    """(A - mean A) / (std A + 1e-8), std with ddof = 1, as losses.normalize_advantages."""
    return (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)


def loss_head(logits, values, actions, logp_old, adv, returns, clip_eps, vf_coef, ent_coef) -> dict:
    """Everything of one minibatch's PPO loss after the two networks, with its gradients by hand
    (module docstring): logits (B, A) and values (B,) in; the loss, its parts and g_logits,
    g_values (dL/dlogits, dL/dvalues) out, and logp = log pi(a|s) (for the diagnostics)."""
    B = len(logits)
    m = logits.max(axis=1, keepdims=True)
    logp_all = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    p = np.exp(logp_all)
    rows = np.arange(B)
    logp = logp_all[rows, actions]
    ratio = np.exp(logp - logp_old)
    unclipped = ratio * adv
    clipped = np.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv
    surrogate = np.minimum(unclipped, clipped)
    unclipped_wins = unclipped <= clipped
    inside = (ratio >= 1 - clip_eps) & (ratio <= 1 + clip_eps)
    g_logp = np.where(unclipped_wins | inside, -adv * ratio / B, 0.0)
    g_logits = -p * g_logp[:, None]
    g_logits[rows, actions] += g_logp
    entropy = -(p * logp_all).sum(axis=1)
    if ent_coef:
        g_logits += ent_coef / B * p * (logp_all + entropy[:, None])
    error = values - returns
    policy_loss, value_loss = -surrogate.mean(), 0.5 * (error @ error) / B
    entropy_mean = entropy.mean()
    return {"loss": float(policy_loss + vf_coef * value_loss - ent_coef * entropy_mean),
            "policy_loss": float(policy_loss), "value_loss": float(value_loss),
            "entropy": float(entropy_mean), "g_logits": g_logits.astype(logits.dtype, copy=False),
            "g_values": ((vf_coef / B) * error).astype(values.dtype, copy=False), "logp": logp}
