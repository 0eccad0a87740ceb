"""The op kinds that every stage agrees on (graph nodes, profile efficiencies, cost rules)."""

from __future__ import annotations

OP_KINDS: tuple[str, ...] = (
    "conv",  # dense or grouped convolution (not depthwise)
    "depthwise_conv",  # groups == in_channels
    "linear",  # fully connected
    "matmul",  # bare matmul / bmm / einsum
    "norm",  # batch/layer/group norm
    "activation",  # relu, gelu, sigmoid, hardswish, ...
    "pool",  # max/avg/adaptive pooling
    "add",  # elementwise add/sub (residuals)
    "mul",  # elementwise mul/div (attention gates, squeeze-excite)
    "concat",  # cat/stack
    "reshape",  # view/flatten/permute: no arithmetic, may copy
    "softmax",
    "dropout",
    "other",
)
