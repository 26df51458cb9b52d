"""ppo_ref: a numpy-only reference implementation of Proximal Policy Optimization."""
__version__ = "0.1.0"
