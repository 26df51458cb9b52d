"""Observation spaces: what the MLP policy sees is one flat float vector per state.

gymnasium writes the encoding (`gymnasium.spaces.utils.flatten_space` and `flatten`); this module
applies it to each sub-env's observation (FlattenObservations, a vector wrapper of a few lines:
gymnasium's own vector FlattenObservation holds a lambda, which pickle cannot save, and a
checkpoint pickles the env), refuses what an MLP should not be given, and says which columns are
one-hot:

    Box (any shape but images)    its values, row-major         (float columns)
    Discrete(n)                   one-hot of length n           (s - start is the hot index)
    MultiDiscrete(nvec)           the one-hots, concatenated    (sum(nvec) columns)
    MultiBinary(n)                its 0/1 entries               (n columns)
    Tuple, Dict of these          the parts, concatenated (Dict in its key order, which
                                  gymnasium sorts when given a plain dict)

A 1-D Box is used as it is (no wrapper: CartPole's env stays CartPole's env). A Box with three or
more dimensions is an image, and an MLP reference does not do convolutions: flattening a 96x96x3
frame into 27,648 inputs of one dense layer trains poorly and slowly, so it is refused rather
than quietly accepted. Spaces that have no fixed-length flat form (Text, Graph, Sequence, OneOf)
are refused too.

Observation normalisation (normalize.py) leaves the one-hot and 0/1 columns as they are
(`one_hot_columns`): they are already on a unit scale, and standardising an indicator that is
rarely 1 would turn it into a large, rare input.
"""
from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.spaces.utils import flatdim, flatten, flatten_space
from gymnasium.vector import VectorEnv, VectorObservationWrapper
from gymnasium.vector.utils import batch_space, iterate

__all__ = ["check_observation_space", "needs_encoding", "encode_observations", "one_hot_columns",
           "FlattenObservations"]

_INDICATORS = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def check_observation_space(space, path: str = "observation space") -> None:
    """TypeError naming the part of `space` an MLP policy cannot take: an image Box (3 or more
    dimensions), or a space with no fixed-length flat form. `path` names the part in messages
    (a Dict key or Tuple index is appended as it descends)."""
    if isinstance(space, spaces.Box):
        if len(space.shape) >= 3:
            raise TypeError(f"{path} is an image Box of shape {space.shape}: an MLP reference does "
                            f"not do convolutions; give the policy a feature vector instead "
                            f"(e.g. the env's state, or features from a CNN you train yourself)")
        return
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim != 1:
        raise TypeError(f"{path} is a MultiDiscrete with nvec of shape {space.nvec.shape}; only "
                        f"1-D nvec is supported")
    if isinstance(space, _INDICATORS):
        return
    if isinstance(space, spaces.Tuple):
        for i, part in enumerate(space.spaces):
            check_observation_space(part, f"{path}[{i}]")
        return
    if isinstance(space, spaces.Dict):
        for key, part in space.spaces.items():
            check_observation_space(part, f"{path}[{key!r}]")
        return
    raise TypeError(f"{path} is {space}: supported are Box, Discrete, MultiDiscrete, MultiBinary "
                    f"and Tuple or Dict of them (no fixed-length vector encodes a "
                    f"{type(space).__name__})")


def needs_encoding(space) -> bool:
    """True unless `space` is already a flat vector (a 1-D Box): checks it first."""
    check_observation_space(space)
    return not (isinstance(space, spaces.Box) and len(space.shape) == 1)


class FlattenObservations(VectorObservationWrapper):
    """Each sub-env's observation o replaced by gymnasium's flatten(space, o), stacked: (N, D),
    with D = flatdim(space). single_observation_space is flatten_space(space); the original space
    stays in `raw_space`."""

    def __init__(self, env: VectorEnv):
        super().__init__(env)
        self.raw_space = env.single_observation_space
        self.single_observation_space = flatten_space(self.raw_space)
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def observations(self, observations):
        # flatten takes one observation of the single space: one call per sub-env
        return np.stack([flatten(self.raw_space, o)
                         for o in iterate(self.env.observation_space, observations)])


def encode_observations(envs: VectorEnv) -> VectorEnv:
    """`envs` with every observation flattened (FlattenObservations), if its single observation
    space is not a 1-D Box already (then `envs` itself). TypeError for images and spaces without a
    flat form (check_observation_space)."""
    if not needs_encoding(envs.single_observation_space):
        return envs
    return FlattenObservations(envs)


def one_hot_columns(envs: VectorEnv) -> np.ndarray:
    """bool (D,): which of the D columns of envs' (flat) observations encode a Discrete,
    MultiDiscrete or MultiBinary part, in flatten's order. All False for a plain Box env."""
    e = envs
    while e is not None:   # find the encoder among the vector wrappers
        if isinstance(e, FlattenObservations):
            mask = _indicator_mask(e.raw_space)
            break
        e = getattr(e, "env", None)
    else:
        mask = np.zeros(flatdim(envs.single_observation_space), dtype=bool)
    return mask


def _indicator_mask(space) -> np.ndarray:
    """The flat columns of `space`, True where they come from an indicator space (the loop over
    parts follows gymnasium's flatten: Tuple in order, Dict in its key order)."""
    if isinstance(space, _INDICATORS):
        return np.ones(flatdim(space), dtype=bool)
    if isinstance(space, spaces.Box):
        return np.zeros(flatdim(space), dtype=bool)
    parts = space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces
    return np.concatenate([_indicator_mask(p) for p in parts])
