"""The shared environment contract for the ALE backend."""

from memorax.testing import AgentRunContract, EnvironmentContract, TruncationCase


class TestALEContract(EnvironmentContract, AgentRunContract):
    """Pong: uint8 NHWC frame stacks, a Discrete action space, a frame-count time limit."""

    env_ids = ("ale::Pong",)
    # 8 agent steps of 4 emulator frames; a Pong point takes far longer.
    truncation_case = TruncationCase("ale::Pong", {"max_num_frames_per_episode": 32}, 8)
