"""RLHF in miniature: reward-model over-optimisation, and the KL penalty that holds it back.

The whole recipe on a toy language (ppo_ref.rlhf): pretrain a token policy pi_ref by maximum
likelihood on a synthetic corpus; sample pairs from it and have a hidden "gold" judge label them,
with 10% label noise; fit a reward model r_phi (an MLP on letter counts) by Bradley-Terry; then
fine-tune copies of pi_ref by PPO on

    r_t = -beta (log pi_theta(x_t|x_<t) - log pi_ref(x_t|x_<t))  +  r_phi(x) at the last token,

for several fixed beta and for the proportional KL controller ("adaptive", Ziegler et al. 2019).
The judge likes early letters and punishes immediate repetitions; r_phi sees counts only, so it
cannot see repetitions. With beta = 0 PPO finds that out: the proxy reward r_phi keeps rising
while the gold reward peaks and then collapses ("aaaaaaaaaaaa"), and KL(pi_theta || pi_ref) grows
large. With beta > 0 the KL stays bounded and the gold reward does not collapse.

Every run starts from the same pi_ref and the same random stream. Proxy, gold and KL are measured
every few iterations on fresh samples of the current policy; KL is the stepwise estimator
E_x[sum_t KL(pi_theta(.|x_<t) || pi_ref(.|x_<t))] in nats per sequence.

It writes rlhf.png, rlhf_summary.json (the held-out reward-model accuracy and, per run, beta or
"adaptive", final KL, final proxy and gold reward, best gold reward) and rlhf.json (the curves
drawn, samples, configs).

    python demos/rlhf.py --out out/rlhf     # 65-90 s on 2 shared cores; --quick: seconds
"""
from __future__ import annotations

import _common  # puts the repository on sys.path; one BLAS thread (set before numpy loads)

import numpy as np

from ppo_ref.rlhf import ALPHABET, RLHFConfig, WorldConfig, decode, prepare_world, rlhf_finetune

BETAS = (0.0, 0.01, 0.03, 0.1, 0.3)
TARGET_KL = 6.0        # nats per sequence, for the adaptive run
ADAPTIVE_START = 0.03  # the adaptive run's initial beta
SUMMARY_RUN_KEYS = ("beta", "final_kl", "final_proxy_reward", "final_gold_reward",
                    "max_gold_reward")


def sweep(quick: bool):
    """(world config, fine-tuning config, [(label, beta, target_kl), ...]), full or quick."""
    if quick:
        world = WorldConfig(corpus_size=400, pretrain_epochs=2, train_pairs=300, test_pairs=200,
                            rm_epochs=4)
        tune = RLHFConfig(iterations=6, batch_size=32, eval_every=2, eval_samples=64,
                          lr=2e-4, kl_horizon=200.0)
        betas = (0.0, 0.1)
    else:
        world = WorldConfig()
        tune = RLHFConfig(iterations=200, batch_size=128, eval_every=2, eval_samples=400,
                          lr=2e-4, kl_horizon=1000.0)
        betas = BETAS
    runs = [(f"β = {b:g}", b, None) for b in betas]
    runs.append((f"adaptive (target KL {TARGET_KL:g})", ADAPTIVE_START, TARGET_KL))
    return world, tune, runs


def plot(results, target_kl, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (ax_proxy, ax_gold), (ax_kl, ax_front) = axes
    for i, r in enumerate(results):
        curve, style = r["curve"], {"color": f"C{i}", "label": r["label"]}
        ax_proxy.plot(curve["iteration"], curve["proxy"], **style)
        ax_gold.plot(curve["iteration"], curve["gold"], **style)
        ax_kl.plot(curve["iteration"], curve["kl"], **style)
        ax_front.plot(curve["kl"], curve["gold"], marker=".", **style)
        ax_front.plot(curve["kl"][-1], curve["gold"][-1], marker="o", ms=9, color=f"C{i}")
    ax_kl.axhline(target_kl, color="grey", ls=":", label=f"controller's target ({target_kl:g})")
    ax_proxy.set(title="Proxy reward: the smaller β, the higher r_φ climbs",
                 xlabel="PPO iteration",
                 ylabel="proxy reward r_φ (std. devs of π_ref's samples)")
    ax_gold.set(title="Gold reward: with small β it peaks, then collapses",
                xlabel="PPO iteration", ylabel="gold reward (judge's score)")
    ax_kl.set(title="KL(π_θ ‖ π_ref): the larger β, the closer π_θ stays to π_ref",
              xlabel="PPO iteration", ylabel="KL (nats per sequence)")
    ax_front.set(title="Gold vs KL: gold rises with KL, then falls past a point",
                 xlabel="KL(π_θ ‖ π_ref) (nats per sequence)",
                 ylabel="gold reward (judge's score)")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    ax_kl.legend(fontsize=8)
    ax_proxy.legend(fontsize=8, loc="lower right")
    ax_front.legend(fontsize=8, title="large dot: end of training", title_fontsize=8)
    fig.suptitle("RLHF in miniature: PPO against a learned reward model, with and without "
                 "a KL penalty to π_ref", fontsize=13)
    fig.tight_layout()
    return _common.save_figure(fig, path)


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=lambda p: p.add_argument(
        "--seed", type=int, default=0, help="seed of the whole pipeline (default 0)"))
    world_cfg, tune, runs = sweep(args.quick)
    world = prepare_world(world_cfg, np.random.default_rng(args.seed))
    print(f"pretraining NLL {world.pretrain_nll[-1]:.3f} nats/token; reward model held-out "
          f"accuracy {world.rm_accuracy:.3f} (vs gold), {world.rm_accuracy_noisy:.3f} "
          f"(vs its noisy training labels)")

    results = []
    for label, beta, target_kl in runs:
        cfg = RLHFConfig(**{**vars(tune), "beta": beta, "target_kl": target_kl})
        policy = world.reference.copy()
        rng = np.random.default_rng([args.seed, 1])  # the same stream for every run
        evals, history = rlhf_finetune(policy, world.reference, world.reward_model, cfg, rng,
                                       gold_fn=world.gold)
        curve = {k: [e[k] for e in evals] for k in ("iteration", "proxy", "gold", "kl", "beta",
                                                    "length")}
        final = evals[-1]
        results.append({
            "label": label,
            "beta": "adaptive" if target_kl is not None else beta,
            "final_kl": final["kl"], "final_proxy_reward": final["proxy"],
            "final_gold_reward": final["gold"], "max_gold_reward": max(curve["gold"]),
            "final_beta": final["beta"], "final_length": final["length"],
            "samples": decode(policy.sample(6, rng)[0], ALPHABET),
            "curve": curve,
        })
        print(f"{label:28s} KL {final['kl']:6.2f}  proxy {final['proxy']:5.2f}  gold "
              f"{final['gold']:6.2f} (max {max(curve['gold']):5.2f})  beta {final['beta']:.3f}  "
              f"e.g. {results[-1]['samples'][:3]}")

    reference_samples = decode(world.reference.sample(6, np.random.default_rng(args.seed))[0],
                               ALPHABET)
    # rlhf_summary.json holds exactly the numbers issue 7 asks for; rlhf.json everything else
    # (the curves drawn, sample sequences, configs).
    summary = {"reward_model_accuracy": world.rm_accuracy,
               "runs": [{k: r[k] for k in SUMMARY_RUN_KEYS} for r in results]}
    details = {"reward_model_accuracy_noisy_labels": world.rm_accuracy_noisy,
               "pretrain_nll": world.pretrain_nll[-1],
               "label_noise": world_cfg.label_noise, "target_kl": TARGET_KL,
               "reference_samples": reference_samples,
               "world_config": vars(world_cfg),
               "finetune_config": {**vars(tune), "value_hidden": list(tune.value_hidden)},
               "runs": results}
    _common.save_json(summary, args.out / "rlhf_summary.json")
    _common.save_json(details, args.out / "rlhf.json")
    plot(results, TARGET_KL, args.out / "rlhf.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
