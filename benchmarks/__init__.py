"""Benchmarks, run from the repository root: `python -m benchmarks.bench` (how fast the trainer
runs against the hand-written numpy step in handwritten.py) and `python -m benchmarks.compare_sb3`
(the same measurement beside Stable-Baselines3). Not part of the installed package."""
