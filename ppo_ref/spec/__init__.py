"""The specification: golden vectors, and the conformance kit that checks another implementation
of PPO's quantities (and of a whole update) against ppo_ref's, and names the mistake when one
is made.

In the order they build on each other:

    cases.py       the inputs of every golden case, and the helpers that make them (grid, rollout)
    golden.py      golden vectors: JSON files of inputs, outputs and gradients (golden/*.json),
                   written by `python -m ppo_ref.spec.golden --out DIR`
    quantities.py  each checkable quantity: its adapter signature, reference, cases, known mistakes
    rlhf_quantities.py  the quantities RLHF code adds: KL-shaped token rewards, masked whitening,
                   GAE over padded sequences
    variants.py    each quantity as a family of settings: ppo_ref's, each known mistake's, each
                   library's convention; combinations of mistakes are searched here
    verify.py      check(fn, quantity) and `ppo-ref verify MODULE:FUNCTION --quantity NAME`
    sandbox.py     where verify runs MODULE:FUNCTION: a child process with a time limit, so the
                   function can neither end the check (sys.exit) nor fake it nor hang it
    update.py      a whole PPO update as a scenario to replay: `ppo-ref verify scenario --out DIR`,
                   then `ppo-ref verify-update DIR THEIRS.npz`
    update_variants.py  the update step with each implementation detail as a switch, so a
                   replay that differs is told which detail it got different

Check a function against a quantity. `ppo-ref verify --list` names every quantity with the
signature its function must have; for "gae" it is fn(rewards, values, next_values, terminated,
truncated, gamma, lam) -> (advantages, returns). ppo_ref's own GAE conforms; put yours in its
place, and print(report) says which case fails first and, when it recognises it, the mistake:

    >>> from ppo_ref.gae import compute_gae
    >>> from ppo_ref.spec.verify import check
    >>> report = check(compute_gae, "gae")
    >>> report.status
    'pass'
"""
