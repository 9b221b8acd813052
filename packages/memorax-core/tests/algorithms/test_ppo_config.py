"""PPOConfig: sensible defaults and clear errors for bad values."""

from __future__ import annotations

import dataclasses

import pytest

from memorax.algorithms import PPOConfig


def test_defaults_are_the_usual_ppo_settings():
    config = PPOConfig(num_envs=4, num_steps=128)
    assert (config.gamma, config.gae_lambda, config.clip_coefficient) == (0.99, 0.95, 0.2)
    assert (config.num_minibatches, config.update_epochs) == (4, 4)
    assert config.target_kl is None and config.burn_in_length == 0
    assert config.steps_per_update == 512


def test_config_is_frozen():
    config = PPOConfig(num_envs=4, num_steps=128)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.gamma = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0}, "num_envs must be a positive integer, got 0"),
        ({"num_steps": 2.5}, "num_steps must be a positive integer, got 2.5"),
        ({"gamma": 0.0}, r"gamma must be in \(0, 1\], got 0.0"),
        ({"gamma": 1.5}, r"gamma must be in \(0, 1\]"),
        ({"gae_lambda": -0.1}, r"gae_lambda must be in \[0, 1\]"),
        ({"clip_coefficient": 0}, "clip_coefficient must be a positive number"),
        ({"entropy_coefficient": -1.0}, "entropy_coefficient must be a non-negative number"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be a positive number or None"),
        ({"target_kl": -0.01}, "target_kl must be a positive number or None"),
        ({"update_epochs": True}, "update_epochs must be a positive integer"),
        ({"burn_in_length": 128}, "burn_in_length=128 must be smaller than num_steps=128"),
        ({"num_minibatches": 3}, "cannot be split into num_minibatches=3"),
    ],
)
def test_bad_values_are_rejected_with_a_message_naming_the_field(kwargs, message):
    settings = {"num_envs": 4, "num_steps": 128, **kwargs}
    with pytest.raises(ValueError, match=message):
        PPOConfig(**settings)


def test_none_disables_gradient_clipping_and_target_kl():
    config = PPOConfig(num_envs=4, num_steps=128, max_grad_norm=None, target_kl=None)
    assert config.max_grad_norm is None
