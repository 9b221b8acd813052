"""Kernels per loop body of a compiled training program (a benchmark aid, not a test).

On a CPU every instruction XLA leaves in a loop body (a fusion, a copy, a
dot, a custom call) is a kernel launched on every trip, so the count per
body is a machine-independent proxy for the fixed cost of a loop: fewer is
cheaper. It prints each ``while`` body of the optimized HLO of one PPO
``train`` call (the settings of ``benchmarks/ppo.py``) with its nesting, its
kernel count and its trip count. For PPO with 2 updates the loops are the
update (2 trips), the rollout step (``num_steps`` trips), the epoch
(``update_epochs``) and the minibatch step (``num_minibatches``); loops of
about 16 kernels and 5 trips are key splits (threefry's rounds).

    .venv/bin/python benchmarks/loop_kernels.py                 # MLP torso
    .venv/bin/python benchmarks/loop_kernels.py --torso gru
    .venv/bin/python benchmarks/loop_kernels.py --algo dqn      # any CLI agent, CLI defaults
"""

from __future__ import annotations

import argparse
import re

import jax

# Instructions that move no data and launch nothing.
_FREE = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all"}
_COMPUTATION = re.compile(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?[\w.\-]+ = [^=]*? ([a-z\-]+)\(")
_WHILE = re.compile(r"while\(.*body=%?([\w.\-]+)")
_TRIPS = re.compile(r'known_trip_count":\{"n":"(\d+)"')


def loop_bodies(hlo: str) -> dict[str, tuple[int, list[str], int | None]]:
    """``{body: (kernels, nested bodies, trip count or None)}`` of every while loop in ``hlo``."""
    computations: dict[str, list[str]] = {}
    current = None
    for line in hlo.splitlines():
        match = _COMPUTATION.match(line)
        if match:
            current = match.group(1)
            computations[current] = []
        elif line.startswith("}"):
            current = None
        elif current is not None:
            computations[current].append(line)
    bodies = {}
    for lines in computations.values():
        for line in lines:
            match = _WHILE.search(line)
            if match:
                name = match.group(1)
                body = computations[name]
                kernels = sum(
                    1
                    for instruction in body
                    if (op := _INSTRUCTION.match(instruction)) and op.group(1) not in _FREE
                )
                nested = [m.group(1) for i in body if (m := _WHILE.search(i))]
                trips = _TRIPS.search(line)
                bodies[name] = (kernels, nested, int(trips.group(1)) if trips else None)
    return bodies


def print_tree(bodies: dict[str, tuple[int, list[str], int | None]]) -> None:
    """Print the loops outermost first, indented by nesting, with trip counts."""
    children = {child for _, nested, _ in bodies.values() for child in nested}

    def show(name: str, depth: int) -> None:
        kernels, nested, trips = bodies[name]
        print(f"{'  ' * depth}{kernels} kernels x {trips} trips  ({name})")
        for child in nested:
            show(child, depth + 1)

    for root in bodies:
        if root not in children:
            show(root, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="ppo")
    parser.add_argument("--torso", default="mlp")
    args = parser.parse_args()
    if args.algo == "ppo":
        from ppo import NUM_ENVS, NUM_STEPS, make_agent

        agent = make_agent(args.torso)
        num_steps = 2 * NUM_ENVS * NUM_STEPS
    else:
        from memorax.cli.agents import ALGORITHMS
        from memorax.envs import make

        spec = ALGORITHMS[args.algo]
        config = spec.config_class(**spec.defaults)
        env, env_params = make("gymnax::CartPole-v1", num_envs=config.num_envs)
        agent = spec.build(config, env, env_params, args.torso, 64, 3e-4, None)
        num_steps = 2 * config.num_envs * config.num_steps
    train = jax.jit(agent.train, static_argnums=2)
    state = agent.init(jax.random.key(0))
    hlo = train.lower(jax.random.key(1), state, num_steps).compile().as_text()
    bodies = loop_bodies(hlo)
    print_tree(bodies)


if __name__ == "__main__":
    main()
