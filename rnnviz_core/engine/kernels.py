"""Building blocks of the step-by-step recurrence: gate letters, one layer's weights, large CPU
buffers, the fused linear + activation kernel, derivative kernels and the per-sequence time
reversal the backward direction uses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


# Gate letters in the order PyTorch stacks them in weight_ih / weight_hh.
GATES: dict[str, tuple[str, ...]] = {
    "GRU": ("r", "z", "n"),
    "LSTM": ("i", "f", "g", "o"),
    "RNN_TANH": (),
    "RNN_RELU": (),
}

# Fused derivative kernels: grad * y * (1 - y) and grad * (1 - y^2) in one pass, given the output y.
sigmoid_bwd = torch.ops.aten.sigmoid_backward.grad_input
tanh_bwd = torch.ops.aten.tanh_backward.grad_input


@dataclass
class LayerWeights:
    """One layer and direction's weights, detached, on the compute device."""

    w_ih: torch.Tensor  # (G*H, I)
    w_hh: torch.Tensor  # (G*H, Hs)
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None
    w_hr: torch.Tensor | None  # (Hs, H) LSTM projection


def layer_weights(m: nn.RNNBase, layer: int, reverse: bool, device, dtype) -> LayerWeights:
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")

    def get(name):
        p = getattr(m, name + sfx, None)
        return None if p is None else p.detach().to(device=device, dtype=dtype)

    return LayerWeights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr"))




# Buffers at least this large (bytes) are taken from numpy on the CPU: numpy asks the kernel for
# huge pages (madvise), so first-touching tens of MB costs a fraction of what 4 KB pages cost.
_BIG = 4 << 20


def big_empty(shape, dtype, device) -> torch.Tensor:
    """``torch.empty`` for large CPU float buffers, backed by numpy (huge pages where available).

    The tensor shares its memory with a numpy array, so ``t.numpy()`` hands it over with no copy.
    """
    device = torch.device(device)
    if device.type == "cpu" and dtype in (torch.float32, torch.float64):
        size = 1
        for s in shape:
            size *= int(s)
        if size * (4 if dtype == torch.float32 else 8) >= _BIG:
            return torch.from_numpy(np.empty(tuple(int(s) for s in shape),
                                             dtype=np.float32 if dtype == torch.float32 else np.float64))
    return torch.empty(shape, dtype=dtype, device=device)


def _fused_linear_op():
    """oneDNN's fused linear + activation kernel (what torch.compile uses on x86 CPUs), or None."""
    try:
        if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
            return None
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return None


_LINEAR_ACT = _fused_linear_op()


def linear_act(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor, act: str) -> torch.Tensor:
    """``act(z @ w.T + b)`` for z (M, K), w (O, K), b (O,); act "sigmoid" or "tanh".

    On the CPU one oneDNN kernel computes the product, adds the bias and applies the activation
    while each block of the result is in cache (a third of the memory traffic of three passes);
    elsewhere, or if that kernel refuses the input, the same in plain operations.
    """
    if _LINEAR_ACT is not None and z.device.type == "cpu" and z.dtype == torch.float32:
        try:
            return _LINEAR_ACT(z, w, b, act, [], "")
        except RuntimeError:
            pass
    y = torch.addmm(b, z, w.t())
    return y.sigmoid_() if act == "sigmoid" else y.tanh_()



def reverse_index(mask, t_len, n, device):
    """(N, T) int64 index that reverses each sequence within its length (padding stays put).

    The permutation is its own inverse: gathering with it again restores the original order.
    """
    t = torch.arange(t_len, device=device)[None, :].expand(n, t_len)
    if mask is None:
        return t_len - 1 - t
    lens = mask.sum(1, keepdim=True)
    return torch.where(t < lens, lens - 1 - t, t)


def reorder(a, idx):
    """Reorder a batch-first (N, T, K) tensor along time with a per-sequence index (N, T)."""
    return a.gather(1, idx[..., None].expand_as(a))

