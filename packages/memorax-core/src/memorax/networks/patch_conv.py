"""A strided VALID convolution computed from image patches and one matmul.

``jax.grad`` of ``flax.linen.Conv`` turns into filter-gradient convolutions
(with the stride as a kernel dilation) that XLA:CPU does not hand to its fast
convolution library. Inside a ``lax.scan`` or while loop, where every agent's
update runs, they fall back to a naive loop nest: the gradient of a
Nature-DQN CNN on a 256-frame minibatch took 8.3 s per step in a scan on a
2-core CPU, against 0.5 s for the same gradient outside a loop and 0.6 s in
a scan with this module (jax 0.9.2). :class:`PatchConv` gathers the patches
with strided slices, so its forward and backward passes are slices, pads and
one matmul, which XLA:CPU runs fast anywhere. On GPUs ``nn.Conv`` (cuDNN)
is the faster choice.

Its parameters have ``nn.Conv``'s names and shapes (``kernel: [k_h, k_w,
C_in, F]``, ``bias: [F]``), so for the same parameters both compute the same
function, and a checkpoint of one loads into the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["PatchConv"]


class PatchConv(nn.Module):
    """``nn.Conv(features, kernel_size, strides, padding="VALID")`` as patches x kernel.

    ``inputs: [..., H, W, C_in] -> [..., (H - k_h) // s_h + 1, (W - k_w) // s_w + 1,
    features]``; any number of leading batch axes. Integer inputs (e.g. uint8
    frames) are cast to float32.
    """

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] = (1, 1)
    use_bias: bool = True
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        """Convolve the last three axes ``[H, W, C_in]`` of ``inputs``."""
        if len(self.kernel_size) != 2 or len(self.strides) != 2:
            raise ValueError(
                "PatchConv: kernel_size and strides must each have two entries (height, "
                f"width), got kernel_size={tuple(self.kernel_size)}, strides={tuple(self.strides)}."
            )
        if inputs.ndim < 4:
            raise ValueError(
                "PatchConv: inputs must be [..., H, W, C] with at least one batch axis, got "
                f"shape {inputs.shape}."
            )
        (k_h, k_w), (s_h, s_w) = self.kernel_size, self.strides
        height, width, channels = inputs.shape[-3:]
        if height < k_h or width < k_w:
            raise ValueError(
                f"PatchConv: the image ({height} x {width}) is smaller than the kernel "
                f"({k_h} x {k_w}); VALID padding needs at least one full window."
            )
        x = inputs if jnp.issubdtype(inputs.dtype, jnp.floating) else inputs.astype(jnp.float32)
        out_h, out_w = (height - k_h) // s_h + 1, (width - k_w) // s_w + 1
        # Patch (i, j) of every output pixel, in the kernel's (k_h, k_w, C_in) order.
        windows = [
            x[..., i : i + s_h * (out_h - 1) + 1 : s_h, j : j + s_w * (out_w - 1) + 1 : s_w, :]
            for i in range(k_h)
            for j in range(k_w)
        ]
        patches = jnp.concatenate(windows, axis=-1)
        kernel = self.param("kernel", self.kernel_init, (k_h, k_w, channels, self.features))
        y = patches @ kernel.reshape(k_h * k_w * channels, self.features).astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(x.dtype)
        return y
