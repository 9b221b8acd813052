"""Mamba: a selective state space layer (Gu & Dao, 2023; Dao & Gu, 2024)."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from memorax.networks.causal_conv import CausalConv
from memorax.networks.chunked_linear_attention import pad_time
from memorax.networks.dense import Dense
from memorax.networks.sequence_model import SequenceModel, check_sequence_inputs


class Mamba(SequenceModel):
    """Mamba layer with the Mamba-2 selective SSM (a scalar decay per head).

    ``x, B, C`` go through a causal depthwise convolution and SiLU; per head,
    ``h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t x_t^T`` and
    ``y_t = h_t^T C_t + D x_t``, with input-dependent ``Delta_t = softplus(.)``,
    ``B_t, C_t: [state_size]`` and learned ``A < 0``. The output is gated by
    ``SiLU(z)``, RMS-normalised and projected. A scalar decay per head makes
    the SSM gated linear attention, so whole sequences run chunk by chunk in
    parallel.

    The convolution's last ``conv_kernel - 1`` inputs are part of the carry
    and masked at episode starts, so chunks equal the whole sequence.

    ``[B, T, F] -> [B, T, features]``; inner width ``expand * features`` split
    into heads of ``head_dim``; carry ``{"conv": [B, conv_kernel - 1, inner +
    2 state_size], "ssm": [B, heads, state_size, head_dim]}``.
    """

    features: int
    state_size: int = 16
    head_dim: int = 16
    expand: int = 2
    conv_kernel: int = 4
    chunk_size: int = 16
    dt_min: float = 1e-3
    dt_max: float = 1e-1

    @property
    def _inner(self) -> int:
        inner = self.expand * self.features
        if inner % self.head_dim:
            raise ValueError(
                f"Mamba needs expand * features divisible by head_dim, got "
                f"{self.expand} * {self.features} and head_dim={self.head_dim}."
            )
        return inner

    @nn.compact
    def __call__(
        self, inputs: jax.Array, episode_starts: jax.Array, carry: dict[str, jax.Array]
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        check_sequence_inputs("Mamba", inputs, episode_starts)
        inner, n = self._inner, self.state_size
        heads = inner // self.head_dim
        batch, steps = inputs.shape[:2]
        projected = Dense(2 * inner + 2 * n + heads, name="in")(inputs)
        gate, xbc, dt = jnp.split(projected, [inner, 2 * inner + 2 * n], axis=-1)
        conv_carry, xbc = CausalConv(inner + 2 * n, self.conv_kernel, name="conv")(
            xbc, episode_starts, carry["conv"]
        )
        x, b, c = jnp.split(jax.nn.silu(xbc), [inner, inner + n], axis=-1)

        def dt_bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
            # softplus(bias) starts log-uniform in [dt_min, dt_max].
            lo, hi = math.log(self.dt_min), math.log(self.dt_max)
            step = jnp.exp(jax.random.uniform(key, shape, dtype, lo, hi))
            return step + jnp.log(-jnp.expm1(-step))

        step = jax.nn.softplus(dt + self.param("dt_bias", dt_bias_init, (heads,)))
        log_a = self.param(
            "A_log", lambda _key, shape: jnp.log(jnp.linspace(1.0, 16.0, shape[0])), (heads,)
        )
        skip = self.param("D", nn.initializers.ones_init(), (heads,))
        x = jnp.reshape(x, (batch, steps, heads, self.head_dim))
        ssm, y = selective_scan(
            c, b, x, step, -jnp.exp(log_a), episode_starts, carry["ssm"], self.chunk_size
        )
        y = y + skip[:, None] * x
        y = jnp.reshape(y, (batch, steps, inner)) * jax.nn.silu(gate)
        outputs = Dense(self.features, name="out")(nn.RMSNorm(name="norm")(y))
        return {"conv": conv_carry, "ssm": ssm}, outputs

    @nn.nowrap
    def initialize_carry(self, batch_size: int) -> dict[str, jax.Array]:
        """Zero convolution window and zero SSM state (see the class docstring for shapes)."""
        inner = self._inner
        conv = CausalConv(inner + 2 * self.state_size, self.conv_kernel)
        return {
            "conv": conv.initialize_carry(batch_size),
            "ssm": jnp.zeros(
                (batch_size, inner // self.head_dim, self.state_size, self.head_dim),
                jnp.float32,
            ),
        }


def selective_scan(
    c: jax.Array,
    b: jax.Array,
    x: jax.Array,
    step: jax.Array,
    a: jax.Array,
    episode_starts: jax.Array,
    initial_state: jax.Array,
    chunk_size: int = 16,
) -> tuple[jax.Array, jax.Array]:
    """Mamba-2's SSM, ``h_t = exp(step_t a) h_{t-1} + step_t b_t x_t^T``, ``y_t = h_t^T c_t``,
    per head, with ``h`` reset to zero before an episode start.

    It is gated linear attention with ``q = c``, ``k = step * b``, but ``b`` and
    ``c`` are shared by the heads (one group), so the ``c b^T`` scores and the
    state's ``b``/``c`` products are computed once for all heads, and heads sit
    ahead of time in the layout so each per-head product is a plain batched matmul.

    Args:
        c, b: ``[B, T, K]``.
        x: ``[B, T, H, V]``.
        step: ``[B, T, H]``, ``>= 0``.
        a: ``[H]``, ``< 0``.
        episode_starts: ``[B, T]`` bool.
        initial_state: ``[B, H, K, V]``.
        chunk_size: steps per chunk (``min(chunk_size, T)`` is used).

    Returns:
        ``(h_{T-1} [B, H, K, V], y [B, T, H, V])``.
    """
    batch, steps = c.shape[:2]
    heads, v_dim = x.shape[2:]
    if steps == 1:
        # One step (acting) as the recurrence itself: the chunk bookkeeping costs more.
        keep = 1.0 - episode_starts[:, 0, None].astype(x.dtype)  # [B, 1]
        decay = keep * jnp.exp(step[:, 0] * a)  # [B, H]
        state = decay[:, :, None, None] * initial_state.astype(x.dtype)
        state = state + jnp.einsum("bk,bhv->bhkv", b[:, 0], x[:, 0] * step[:, 0, :, None])
        return state, jnp.einsum("bk,bhkv->bhv", c[:, 0], state)[:, None]
    size = max(1, min(chunk_size, steps))
    num_chunks = -(-steps // size)
    # Padded steps have step 0: they decay by 1 and add nothing.
    pad = num_chunks * size - steps
    c, b, x, step, starts = (pad_time(t, pad) for t in (c, b, x, step, episode_starts))

    def chunked(t: jax.Array) -> jax.Array:
        return jnp.reshape(t, (batch, num_chunks, size, *t.shape[2:]))

    c, b, starts = chunked(c), chunked(b), chunked(starts)
    x = jnp.transpose(chunked(x), (0, 1, 3, 2, 4))  # [B, N, H, C, V]
    step = jnp.transpose(chunked(step), (0, 1, 3, 2))  # [B, N, H, C]
    log_decay = step * a[:, None]
    # segment[i]: number of episode starts in the chunk up to and including step i.
    # Steps i and j share an episode iff their segments are equal.
    segment = jnp.cumsum(starts.astype(jnp.int32), axis=2)  # [B, N, C]
    causal = jnp.tril(jnp.ones((size, size), bool))
    pair = (segment[..., :, None] == segment[..., None, :]) & causal  # [B, N, C, C]
    last_segment = segment[..., -1:]
    # cumulative[i]: log decay from the chunk start (or the last episode start if
    # later) through step i. Summing with the 0/1 pair mask rather than subtracting
    # a prefix keeps earlier episodes out of it bit for bit.
    cumulative = jnp.einsum("bnij,bnhj->bnhi", pair.astype(log_decay.dtype), log_decay)
    mask = pair[:, :, None]
    log_gap = cumulative[..., :, None] - cumulative[..., None, :]
    # Masked pairs may have a positive gap; zero it before exp to avoid overflow.
    gap = jnp.where(mask, jnp.exp(jnp.where(mask, log_gap, 0.0)), 0.0)  # [B, N, H, C, C]
    last_cumulative = cumulative[..., -1:]
    # Weight of key j in the state the chunk leaves, the decay of the incoming state
    # over the chunk, and its weight at query i (zero after a start in the chunk).
    key_weight = step * jnp.where(
        (segment == last_segment)[:, :, None], jnp.exp(last_cumulative - cumulative), 0.0
    )
    carried = jnp.where((last_segment == 0)[:, :, None], jnp.exp(last_cumulative), 0.0)
    read_weight = jnp.where((segment == 0)[:, :, None], jnp.exp(cumulative), 0.0)

    scores = jnp.einsum("bnik,bnjk->bnij", c, b)  # shared by the heads
    scores = scores[:, :, None] * gap * step[..., None, :]
    intra = jnp.einsum("bnhij,bnhjv->bnhiv", scores, x)
    added = jnp.einsum("bnjk,bnhjv->bnhkv", b, x * key_weight[..., None])

    # Across chunks, a short sequential scan (T / C steps) threads the state.
    def across(state: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        decay, add = xs
        return decay * state + add, state

    final, before = jax.lax.scan(
        across,
        initial_state.astype(added.dtype),
        (jnp.swapaxes(carried[..., None], 0, 1), jnp.swapaxes(added, 0, 1)),
    )
    before = jnp.swapaxes(before, 0, 1)  # state entering each chunk [B, N, H, K, V]
    inter = jnp.einsum("bnik,bnhkv->bnhiv", c, before) * read_weight[..., None]
    outputs = jnp.transpose(intra + inter, (0, 1, 3, 2, 4))
    outputs = jnp.reshape(outputs, (batch, num_chunks * size, heads, v_dim))
    return final, outputs[:, :steps]
