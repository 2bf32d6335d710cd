"""Models composed from contract ops, so every impl gets every model for free.

Each function takes `ops` (an impl, or the float64 reference) and impl-native arrays, and
returns impl-native arrays. A forward returns a cache that its backward consumes. An impl may
run a whole model its own way instead (contract.Impl.fused).

- update.py: the optimizer step and its hyper-parameters;
- mlp.py: the MLP;
- attention.py: causal multi-head self-attention;
- transformer.py: GPT-2's pre-norm block and a small GPT built of them;
- cnn.py: conv-relu-pool twice, then a linear head.
"""

from harness.models.attention import attention_backward, attention_forward
from harness.models.cnn import CNN_PARAMS, cnn_backward, cnn_forward, cnn_step
from harness.models.mlp import mlp_backward, mlp_forward, mlp_step
from harness.models.transformer import (
    BLOCK_PARAMS,
    block_backward,
    block_forward,
    block_step,
    gpt_backward,
    gpt_forward,
    gpt_params,
    gpt_step,
)
from harness.models.update import HYPER, OPT_STATE, apply_update

__all__ = [
    "BLOCK_PARAMS",
    "CNN_PARAMS",
    "HYPER",
    "OPT_STATE",
    "apply_update",
    "attention_backward",
    "attention_forward",
    "block_backward",
    "block_forward",
    "block_step",
    "cnn_backward",
    "cnn_forward",
    "cnn_step",
    "gpt_backward",
    "gpt_forward",
    "gpt_params",
    "gpt_step",
    "mlp_backward",
    "mlp_forward",
    "mlp_step",
]
