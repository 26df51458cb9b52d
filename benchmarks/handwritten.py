"""A hand-written numpy PPO minibatch step: the speed limit for ppo_ref's update phase.

Same work as one minibatch of ppo_ref's update with the clip objective and a
discrete (Categorical) policy — forward of the policy and value MLPs (tanh
hidden layers), the clipped surrogate, the 0.5·MSE value loss, the entropy
bonus, their gradients written out by hand (no autodiff, no graph), a global
gradient-norm clip and one Adam step over a single flat parameter vector.

It is deliberately written without ppo_ref's autodiff so that
`update_efficiency = ppo_ref samples/s ÷ these samples/s` measures what the
autodiff costs. It is a benchmark baseline, not part of the library.
"""
from __future__ import annotations

import numpy as np


class HandwrittenPPO:
    """Two tanh MLPs (policy: obs -> ... -> n_actions, value: obs -> ... -> 1) in one flat buffer."""

    def __init__(self, obs_dim, n_actions, hidden=(64, 64), dtype=np.float64, seed=0,
                 lr=3e-4, clip_eps=0.2, vf_coef=0.5, ent_coef=0.0, max_grad_norm=0.5):
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
        self.max_grad_norm = max_grad_norm

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

    def step(self, obs, actions, logp_old, advantages, returns):
        """One minibatch: loss, hand-derived gradients, grad clip, Adam."""
        B = len(obs)
        pi_acts = self._forward(self.nets[0], obs)
        v_acts = self._forward(self.nets[1], obs)
        logits = pi_acts[-1]
        m = logits.max(axis=1, keepdims=True)
        logp_all = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
        p = np.exp(logp_all)
        rows = np.arange(B)
        logp = logp_all[rows, actions]
        adv = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)
        ratio = np.exp(logp - logp_old)
        clipped = np.clip(ratio, 1 - self.clip_eps, 1 + self.clip_eps)
        unclipped_wins = ratio * adv <= clipped * adv
        # d(-mean(min(rA, clip(r)A)))/dlogp = -A r / B where the unclipped term is active
        # (or the clip is not binding), 0 on the flat part.
        inside = (ratio >= 1 - self.clip_eps) & (ratio <= 1 + self.clip_eps)
        g_logp = np.where(unclipped_wins | inside, -adv * ratio / B, 0.0)
        g_logits = -p * g_logp[:, None]
        g_logits[rows, actions] += g_logp
        if self.ent_coef:
            entropy = -(p * logp_all).sum(axis=1)
            # d(-c * mean H)/dlogits = c/B * p * (logp + H)
            g_logits += self.ent_coef / B * p * (logp_all + entropy[:, None])
        values = v_acts[-1][:, 0]
        g_values = (self.vf_coef / B) * (values - returns)  # d(c * 0.5 mean (V-R)^2)/dV
        self._backward(self.nets[0], self.grads[0], pi_acts, g_logits)
        self._backward(self.nets[1], self.grads[1], v_acts, g_values[:, None])
        norm = np.sqrt(self.grad @ self.grad)
        if norm > self.max_grad_norm:
            self.grad *= self.max_grad_norm / (norm + 1e-6)
        self.t += 1
        b1, b2 = 0.9, 0.999
        self.m *= b1
        self.m += (1 - b1) * self.grad
        self.v *= b2
        self.v += (1 - b2) * self.grad * self.grad
        step = self.lr / (1 - b1 ** self.t)
        self.flat -= step * self.m / (np.sqrt(self.v / (1 - b2 ** self.t)) + 1e-8)
