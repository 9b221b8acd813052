"""A plain-Python model of sequence replay, to check the JAX buffers against.

It keeps every env's whole stream as a list and applies the documented rules
one by one, with no ring arithmetic and no tree, so that agreement with the
buffers says their arithmetic implements the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReferenceReplay:
    """Streams of step ids per env, and a priority per (env, start step)."""

    num_envs: int
    capacity: int
    sequence_length: int
    min_length: int
    priority_exponent: float = 1.0
    steps: int = 0
    priorities: dict[tuple[int, int], float] = field(default_factory=dict)
    max_priority: float = 1.0

    def add(self, length: int) -> None:
        """Write ``length`` steps to every env; new starts get the max priority."""
        for step in range(self.steps, self.steps + length):
            for env in range(self.num_envs):
                self.priorities[(env, step)] = self.max_priority
        self.steps += length

    def oldest(self) -> int:
        """The oldest logical step still stored."""
        return max(0, self.steps - self.capacity)

    def is_valid(self, env: int, step: int) -> bool:
        """Whether the window starting at ``step`` is stored and complete."""
        return (
            0 <= env < self.num_envs
            and step >= self.oldest()
            and step + self.sequence_length <= self.steps
        )

    def valid_starts(self) -> set[tuple[int, int]]:
        """Every valid (env, start step)."""
        return {
            (env, step)
            for env in range(self.num_envs)
            for step in range(self.oldest(), self.steps - self.sequence_length + 1)
        }

    def can_sample(self) -> bool:
        """Enough steps per env written."""
        return min(self.steps, self.capacity) >= self.min_length

    def probabilities(self) -> dict[tuple[int, int], float]:
        """Draw probability of each valid start (empty when all masses are zero)."""
        masses = {
            start: self.priorities[start] ** self.priority_exponent for start in self.valid_starts()
        }
        total = sum(masses.values())
        return {start: mass / total for start, mass in masses.items()} if total > 0 else {}

    def update(self, env: int, step: int, priority: float) -> None:
        """Apply one priority update; stale or invalid starts are ignored."""
        if self.is_valid(env, step):
            self.priorities[(env, step)] = priority
            self.max_priority = max(self.max_priority, priority)


def step_id(env: int, step: int) -> int:
    """The value the tests store for env ``env`` at logical step ``step``."""
    return env * 10_000 + step
