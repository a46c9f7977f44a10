"""A slot's training state out of a K-slot model and back into another: how a cascade continues a training.

A slot's state is everything its next step reads: its weights and BatchNorm statistics (its slice of each stacked
tensor, or its own module's), its activation's parameters, and its optimizer state (moments and step count, sliced
like the weights). Loaded into slot j of a freshly built pack of the same model, training goes on as if it had never
stopped: the optimizer's update is elementwise and nothing else carries over from one step to the next (the batch
order and the learning rate are functions of the step, `evaluator.training`). States hold CPU tensors under
slot-independent keys, so they travel through Ray and `torch.save`/`torch.load(weights_only=True)` as plain data.

>>> import torch
>>> from torch import nn
>>> from evaluator.models.packed import PackedMLP
>>> net = PackedMLP([lambda c: nn.ReLU(), lambda c: nn.Tanh()], in_features=3, hidden=(4,), classes=2)
>>> states = slot_states(net, None)
>>> other = PackedMLP([lambda c: nn.Tanh()], in_features=3, hidden=(4,), classes=2)
>>> load_slot_states(other, None, states[1:])
>>> bool(torch.equal(other.body[0].weight[0], net.body[0].weight[1]))
True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from evaluator.models.packed_layers import PackedActivation, PackedBatchNorm, PackedConv1d, PackedLinear
from evaluator.packing.plain import PlainSlots

__all__ = ["SlotState", "load_slot_states", "slot_states"]

SlotState = dict[str, torch.Tensor]
_STACKED = (PackedLinear, PackedConv1d, PackedBatchNorm)


def _parts(net: nn.Module) -> Iterator[tuple[str, nn.Module, bool]]:
    """(key prefix, module, stacked) for every module holding slot state: a stacked layer's own tensors are indexed
    by slot on dimension 0; a per-slot container (an activation's module list, a plain model list) holds slot k's
    module at index k."""
    if isinstance(net, PlainSlots):
        yield "net", net.nets, False
        return
    for name, module in net.named_modules():
        if isinstance(module, _STACKED):
            yield name, module, True
        elif isinstance(module, PackedActivation):
            yield f"{name}.act", module.acts, False


def _tensors(module: nn.Module, stacked: bool, k: int) -> Iterator[tuple[str, torch.Tensor, nn.Parameter | None]]:
    """(key, slot k's tensor, the parameter it belongs to or None for a buffer)."""
    if stacked:
        for name, param in module.named_parameters(recurse=False):
            yield name, param[k], param
        for name, buffer in module.named_buffers(recurse=False):
            yield name, buffer[k], None
        return
    own = module[k]
    params = dict(own.named_parameters())
    for name, tensor in own.state_dict(keep_vars=True).items():
        yield name, tensor, params.get(name)


def slot_states(net: nn.Module, optimizer: torch.optim.Optimizer | None, slots: Sequence[int] | None = None
                ) -> list[SlotState]:
    """Return the state of each slot in `slots` (default all), as detached CPU tensors."""
    if slots is None:
        slots = range(_count(net))
    out = []
    for k in slots:
        state: SlotState = {}
        for prefix, module, stacked in _parts(net):
            for name, tensor, param in _tensors(module, stacked, k):
                key = f"{prefix}.{name}"
                state[key] = tensor.detach().cpu().clone()
                for opt_key, value in (optimizer.state.get(param, {}) if optimizer and param is not None else {}
                                       ).items():
                    if torch.is_tensor(value):
                        sliced = value[k] if stacked and value.dim() else value
                        state[f"optimizer.{opt_key}:{key}"] = sliced.detach().cpu().clone()
        out.append(state)
    return out


def load_slot_states(net: nn.Module, optimizer: torch.optim.Optimizer | None, states: Sequence[SlotState]) -> None:
    """Load states[k] into slot k of `net` (built for len(states) slots) and its fresh `optimizer`, in place.

    KeyError names a tensor a state lacks (a state of another model).
    """
    if len(states) != _count(net):
        raise ValueError(f"{len(states)} slot states for a model of {_count(net)} slots")
    with torch.no_grad():
        for prefix, module, stacked in _parts(net):
            for k, state in enumerate(states):
                for name, tensor, param in _tensors(module, stacked, k):
                    key = f"{prefix}.{name}"
                    if key not in state:
                        raise KeyError(f"the saved training state has no {key!r}: it was saved from another model")
                    tensor.copy_(state[key])
                    if optimizer is None or param is None:
                        continue
                    for opt_key in _optimizer_keys(state, key):
                        value = state[f"optimizer.{opt_key}:{key}"].to(param.device)
                        slot_state = optimizer.state[param]
                        if stacked and value.dim():
                            if opt_key not in slot_state:
                                slot_state[opt_key] = torch.zeros_like(param)
                            slot_state[opt_key][k].copy_(value)
                        else:  # a step count (one per tensor, the same for every slot) or a per-slot module's own
                            slot_state[opt_key] = value.clone()


def _optimizer_keys(state: SlotState, key: str) -> list[str]:
    suffix = f":{key}"
    return [name[len("optimizer."):-len(suffix)] for name in state if name.startswith("optimizer.")
            and name.endswith(suffix)]


def _count(net: nn.Module) -> int:
    """Slots in a K-slot model."""
    if isinstance(net, PlainSlots):
        return len(net.nets)
    return next(len(m.acts) for m in net.modules() if isinstance(m, PackedActivation))
