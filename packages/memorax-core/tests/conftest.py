"""Settings for every memorax-core test.

Full-precision float32 matrix products. On a GPU, JAX's default lets
float32 products round their inputs to TF32 (about 1e-3 relative error): on
an H200 the parallel and step-by-step forms of every sequence model, and
PatchConv against ``nn.Conv``, then differed by up to 2e-3, while the tests
check that two exact forms agree to 1e-5. On a CPU this changes nothing
(the same kernels run; XLA's CPU products are already full float32).
"""

from __future__ import annotations

import jax

jax.config.update("jax_default_matmul_precision", "highest")
