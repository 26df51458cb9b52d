"""The RLHF quantities of the kit: the per-token KL-shaped reward, masked whitening, GAE over
padded sequences. Their fixed cases hold the numbers worked by hand in their descriptions;
ppo_ref.rlhf's own functions pass as they are; TRL's way of writing them (in torch, skipped
without it) passes, and TRL's loop without its masking of the values is named.
"""
import math

import numpy as np
import pytest

from ppo_ref.rlhf.finetune import sequence_gae, token_rewards
from ppo_ref.spec import verify


def fixed(quantity):
    return next(c for c in verify.cases(quantity) if c.name.startswith("fixed/"))


def test_the_fixed_reward_case_by_hand():
    logp, logp_ref, mask, scores, beta = fixed("rlhf_token_rewards").args
    expected = np.array([[-0.5 * (-1.0 + 1.5), -0.5 * (-2.0 + 1.0), 1.0 - 0.5 * 0.0, 0.0],
                         [-0.5 * 0.25, 0.0, -0.5 * -0.5, -2.0 - 0.5 * 1.0]])
    np.testing.assert_allclose(token_rewards(logp, logp_ref, mask, scores, beta), expected)


def test_the_fixed_whitening_case_by_hand():
    adv, mask = fixed("rlhf_whitening").args
    got = verify.QUANTITIES["rlhf_whitening"].reference(adv, mask)
    np.testing.assert_allclose(got, (np.array([1.0, 3.0, 0.0, 2.0, 4.0]) - 2.0) /
                               (math.sqrt(2.5) + 1e-8))


def test_the_fixed_gae_case_by_hand():
    rewards, values, mask, lam = fixed("rlhf_sequence_gae").args
    adv, ret = verify.QUANTITIES["rlhf_sequence_gae"].reference(rewards, values, mask, lam)
    np.testing.assert_allclose(adv, [0.125, 0.75])
    np.testing.assert_allclose(ret, [0.625, 1.0])


def test_every_case_has_padding_that_holds_something():
    for name in ("rlhf_token_rewards", "rlhf_whitening", "rlhf_sequence_gae"):
        padded = [c for c in verify.cases(name) if not c.args[1 if name == "rlhf_whitening" else 2].all()]
        assert len(padded) >= 3, name


def test_ppo_refs_rlhf_functions_pass_as_they_are():
    assert verify.check("ppo_ref.rlhf.finetune:token_rewards", "rlhf_token_rewards").passed
    report = verify.check(lambda r, v, m, lam: tuple(x[m] for x in sequence_gae(r, v, m, lam)),
                          "rlhf_sequence_gae")
    assert report.passed, report


# ----- TRL's way, in torch ----------------------------------------------------------------------

def trl_compute_rewards(logp, logp_ref, mask, scores, beta):
    """trl's PPOTrainer.compute_rewards: -kl_coef * (logprob - ref_logprob), the score added
    at the last non-masked index."""
    torch = pytest.importorskip("torch")
    rewards = []
    for score, lp, ref, m in zip(scores, torch.tensor(logp), torch.tensor(logp_ref),
                                 torch.tensor(mask)):
        reward = (-beta * (lp - ref)) * m
        last_non_masked_index = m.nonzero()[-1]
        reward[last_non_masked_index] += float(score)
        rewards.append(reward)
    return torch.stack(rewards)


def trl_compute_advantages(rewards, values, mask, lam, mask_values=True):
    """trl's PPOTrainer.compute_advantages (gamma = 1), with or without its `values * mask`."""
    torch = pytest.importorskip("torch")
    values, rewards, m = torch.tensor(values), torch.tensor(rewards), torch.tensor(mask)
    if mask_values:
        values = values * m
    rewards = rewards * m
    lastgaelam, advantages_reversed = 0, []
    gen_len = rewards.shape[-1]
    for t in reversed(range(gen_len)):
        nextvalues = values[:, t + 1] if t < gen_len - 1 else 0.0
        delta = rewards[:, t] + nextvalues - values[:, t]
        lastgaelam = delta + lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1]).transpose(0, 1)
    returns = advantages + values
    return advantages[m], returns[m]


def test_trls_rewards_and_gae_conform():
    assert verify.check(trl_compute_rewards, "rlhf_token_rewards").passed
    assert verify.check(trl_compute_advantages, "rlhf_sequence_gae").passed


def test_trls_gae_without_masking_the_values_runs_over_the_padding():
    def unmasked(*args):
        return trl_compute_advantages(*args, mask_values=False)
    report = verify.check(unmasked, "rlhf_sequence_gae")
    assert report.mistake == "runs_over_padding", report
