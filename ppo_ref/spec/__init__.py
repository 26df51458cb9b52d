"""The specification: golden vectors, and the conformance kit that checks another implementation
of PPO's quantities (and of a whole update) against ppo_ref's, and names the mistake when one
is made.

    cases.py       the inputs of every golden case, and naive reference loops for a few
    golden.py      golden vectors: JSON files of inputs, outputs and gradients (golden/*.json)
    quantities.py  each checkable quantity: its adapter signature, reference, cases, known mistakes
    verify.py      check(fn, quantity) and the `ppo-ref verify MODULE:FUNCTION` command
    update.py      a whole PPO update as a scenario to replay: `ppo-ref verify-update`

    >>> from ppo_ref.spec.verify import check
    >>> report = check(my_gae, "compute_gae")     # my_gae(rewards, values, ...) -> advantages
    >>> print(report)
"""
