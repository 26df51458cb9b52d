"""Observation spaces: what the MLP policy sees is one flat float vector per state.

gymnasium writes the encoding (`gymnasium.spaces.utils.flatten_space` and `flatten`, applied to a
vector env by `gymnasium.wrappers.vector.FlattenObservation`); this module only decides when to
use it, refuses what an MLP should not be given, and says which columns are one-hot:

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
from gymnasium.spaces.utils import flatdim
from gymnasium.vector import VectorEnv
from gymnasium.wrappers.vector import FlattenObservation

__all__ = ["check_observation_space", "needs_encoding", "encode_observations", "one_hot_columns"]

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


def encode_observations(envs: VectorEnv) -> VectorEnv:
    """`envs` with every observation flattened by gymnasium's FlattenObservation, if its single
    observation space is not a 1-D Box already (then `envs` itself). TypeError for images and
    spaces without a flat form (check_observation_space)."""
    if not needs_encoding(envs.single_observation_space):
        return envs
    return FlattenObservation(envs)


def one_hot_columns(envs: VectorEnv) -> np.ndarray:
    """bool (D,): which of the D columns of envs' (flat) observations encode a Discrete,
    MultiDiscrete or MultiBinary part, in flatten's order. All False for a plain Box env."""
    e = envs
    while e is not None:   # find the encoder among the vector wrappers
        if isinstance(e, FlattenObservation):
            mask = _indicator_mask(e.env.single_observation_space)
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
