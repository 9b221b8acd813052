"""xminigrid backend: end-of-episode mapping on the Memory task, kwargs, XLand rulesets.

In ``MiniGrid-MemoryS8`` the agent starts in a corridor (row 3) facing east;
five FORWARDs always bring it to the corridor's end (column 6), from where
one turn and one FORWARD reach either the cell beside the remembered object
(success, reward) or the other one (failure, no reward). Both end the episode.
The env is compiled once per time limit, in module fixtures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memorax.envs import EnvironmentKwargsError, UnknownEnvironmentError, make

MEMORY_ID = "xminigrid::MiniGrid-MemoryS8"
FORWARD, TURN_CLOCKWISE, TURN_ANTICLOCKWISE = 0, 1, 2
TO_CORRIDOR_END = (FORWARD,) * 5
CORRIDOR_ROW = 3
STEPS_TO_AN_OBJECT = len(TO_CORRIDOR_END) + 2


def compiled_memory(**kwargs):
    env, params = make(MEMORY_ID, num_envs=1, **kwargs)
    return env, params, jax.jit(env.reset), jax.jit(env.step)


@pytest.fixture(scope="module")
def memory():
    """One copy of MiniGrid-MemoryS8 with its own time limit (5 * 8**2 = 320 steps)."""
    return compiled_memory()


@pytest.fixture(scope="module")
def memory_limited_to_seven_steps():
    """The same task with a 7-step limit: exactly enough to reach an object."""
    return compiled_memory(max_steps=STEPS_TO_AN_OBJECT)


def walk_to(compiled, target: str, seed: int = 0):
    """Walks to the cell beside the remembered object (``"success"``) or the other
    one (``"failure"``); returns every step's result, as numpy arrays but the state."""
    _, params, reset, step = compiled
    _, state = reset(jax.random.key(seed), params)
    results = []

    def act(state, action):
        result = step(jax.random.key(len(results)), state, jnp.asarray([action], jnp.int32), params)
        results.append(
            result._replace(
                **{
                    name: jax.tree.map(np.asarray, getattr(result, name))
                    for name in ("observation", "reward", "terminated", "truncated", "info")
                }
            )
        )
        return result.state

    for action in TO_CORRIDOR_END:
        state = act(state, action)
    assert int(state.state.agent.position[0, 0]) == CORRIDOR_ROW
    target_row = int(getattr(state.state.carry, f"{target}_pos")[0, 0])
    # Facing east, a clockwise turn faces south (a larger row).
    turn = TURN_CLOCKWISE if target_row > CORRIDOR_ROW else TURN_ANTICLOCKWISE
    state = act(state, turn)
    act(state, FORWARD)
    return results


def test_reaching_the_remembered_object_terminates_with_a_reward(memory):
    results = walk_to(memory, "success")
    assert [bool(r.terminated[0]) for r in results] == [False] * 6 + [True]
    assert not any(r.truncated.any() for r in results)
    assert float(results[-1].reward[0]) > 0
    assert all(float(r.reward[0]) == 0 for r in results[:-1])


def test_reaching_the_other_object_terminates_without_a_reward(memory):
    results = walk_to(memory, "failure")
    assert [bool(r.terminated[0]) for r in results] == [False] * 6 + [True]
    assert all(float(r.reward[0]) == 0 for r in results)


def test_the_next_episode_starts_in_the_step_that_ends_one(memory):
    *_, end = walk_to(memory, "success")
    assert int(end.state.state.step_num[0]) == 0
    # The ended episode's last view differs from the new episode's first view.
    assert not np.array_equal(end.observation, end.info["final_observation"])


def test_reaching_an_object_on_the_last_allowed_step_is_terminated(
    memory_limited_to_seven_steps,
):
    results = walk_to(memory_limited_to_seven_steps, "success")
    assert bool(results[-1].terminated[0]) and not bool(results[-1].truncated[0])
    assert float(results[-1].reward[0]) > 0


def test_time_limit_truncates_and_never_terminates(memory_limited_to_seven_steps):
    _, params, reset, step = memory_limited_to_seven_steps
    _, state = reset(jax.random.key(3), params)
    spin = jnp.asarray([TURN_CLOCKWISE], jnp.int32)
    flags = []
    for i in range(2 * STEPS_TO_AN_OBJECT):
        result = step(jax.random.key(i), state, spin, params)
        flags.append((bool(result.terminated[0]), bool(result.truncated[0])))
        state = result.state
    terminated, truncated = zip(*flags, strict=True)
    assert not any(terminated)
    ends = [i + 1 for i, flag in enumerate(truncated) if flag]
    assert ends == [STEPS_TO_AN_OBJECT, 2 * STEPS_TO_AN_OBJECT]


def test_max_steps_and_view_size_set_the_env_params_and_the_observation_space():
    env, params = make(MEMORY_ID, max_steps=11, view_size=5)
    assert (params.max_steps, params.view_size) == (11, 5)
    assert env.default_params() is params
    assert env.observation_space.shape == (5, 5, 2)
    observation, _ = jax.eval_shape(env.reset, jax.random.key(0), params)
    assert observation.shape == (1, 5, 5, 2)
    assert observation.dtype == env.observation_space.dtype == jnp.uint8


def test_observation_space_bounds_are_xminigrids_tile_and_colour_ids():
    from xminigrid.core.constants import NUM_COLORS, NUM_TILES

    env, _ = make(MEMORY_ID)
    high = np.asarray(env.observation_space.high)
    np.testing.assert_array_equal(high[..., 0], NUM_TILES - 1)
    np.testing.assert_array_equal(high[..., 1], NUM_COLORS - 1)


def test_unknown_kwarg_suggests_the_accepted_one():
    with pytest.raises(EnvironmentKwargsError, match="did you mean 'max_steps'"):
        make(MEMORY_ID, max_step=7)


def test_grid_size_is_fixed_by_the_id():
    with pytest.raises(EnvironmentKwargsError, match="max_steps, view_size"):
        make(MEMORY_ID, height=9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"view_size": 4}, "view_size must be odd"),
        ({"view_size": 1}, "at least 3"),
        ({"max_steps": 0}, "max_steps must be a positive int"),
        ({"max_steps": 2.5}, "max_steps must be a positive int"),
    ],
)
def test_bad_param_values_are_refused(kwargs, message):
    with pytest.raises(EnvironmentKwargsError, match=message):
        make(MEMORY_ID, **kwargs)


def test_unknown_id_suggests_the_memory_task():
    with pytest.raises(UnknownEnvironmentError, match="MiniGrid-MemoryS8"):
        make("xminigrid::MiniGrid-Memory-S8")


def test_xland_id_without_a_ruleset_says_how_to_get_one():
    with pytest.raises(EnvironmentKwargsError, match=r"needs ruleset=.*load_benchmark"):
        make("xminigrid::XLand-MiniGrid-R1-9x9")


def test_xland_ruleset_is_a_leaf_of_the_env_params():
    """The task sits in the params as data, copied into each episode at its reset:
    another task (a goal that never holds) runs through the same env and compiled
    step, and changes what ends the episodes it starts."""
    from xminigrid.core.constants import TILES_REGISTRY, Colors, Tiles
    from xminigrid.core.goals import AgentOnTileGoal, EmptyGoal
    from xminigrid.core.rules import EmptyRule
    from xminigrid.types import RuleSet

    floor = TILES_REGISTRY[Tiles.FLOOR, Colors.BLACK]
    # Standing on the floor and moving forward ends the episode at once.
    ruleset = RuleSet(
        goal=AgentOnTileGoal(tile=floor).encode(),
        rules=EmptyRule().encode()[None, ...],
        init_tiles=jnp.asarray([TILES_REGISTRY[Tiles.BALL, Colors.RED]]),
    )
    env, params = make("xminigrid::XLand-MiniGrid-R1-9x9", num_envs=2, ruleset=ruleset)
    assert params.ruleset is ruleset
    step = jax.jit(env.step)
    _, state = env.reset(jax.random.key(0), params)
    forward = jnp.full((2,), FORWARD, jnp.int32)
    result = step(jax.random.key(1), state, forward, params)
    # Whichever way each agent faces, a FORWARD leaves it on the floor (or against
    # a wall or the ball, on the floor it stood on): the goal holds for both.
    np.testing.assert_array_equal(np.asarray(result.terminated), [True, True])
    never = params.replace(ruleset=ruleset.replace(goal=EmptyGoal().encode()))
    _, state = env.reset(jax.random.key(0), never)
    result = step(jax.random.key(1), state, forward, never)
    np.testing.assert_array_equal(np.asarray(result.terminated), [False, False])
