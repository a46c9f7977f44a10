"""K plain child models behind the packed models' interface, for the registry rows without a packed form.

Wide ResNets, DenseNets, the 2-D ResNets and every model built with options train through the same loop as the
packed proxies: the loop sees one module mapping (K, B, *input_shape) to (K, B, classes), and here slot k is its own
`build_from_factory` model, run on its own slice. Nothing is shared, so this gains no speed; it keeps one loop.

>>> import torch
>>> from torch import nn
>>> slots = PlainSlots([nn.Linear(3, 2), nn.Linear(3, 2)])
>>> slots(torch.randn(2, 5, 3)).shape  # (K, B, features) in, (K, B, classes) out
torch.Size([2, 5, 2])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["PlainSlots"]


class PlainSlots(nn.Module):
    """Slot k is `nets[k]` applied to slice k; dropping a slot drops its module (its parameters stay the same)."""

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(h) for net, h in zip(self.nets, x.unbind(0))])  # (K, B, classes)

    def keep(self, keep: torch.Tensor) -> None:
        """Keep only the slots in `keep` (ascending indices)."""
        self.nets = nn.ModuleList(self.nets[i] for i in keep.tolist())

    def grad_norms(self) -> list[float]:
        """Per slot: the L2 norm of its parameters' gradients."""
        return [float(torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]).norm())
                if any(p.grad is not None for p in net.parameters()) else 0.0 for net in self.nets]
