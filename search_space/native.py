"""Fused CPU kernels for expression modules: built with the system C compiler, loaded with ctypes, run through autograd.

`ExprModule` calls `run` on every forward; it returns None (and the module runs its program on torch's kernels) unless
all of these hold: the input is a float32 CPU tensor of at least `MIN_ELEMENTS` elements, no autograd
transformation other than backward is active (no forward-mode AD, no torch.compile), the expression uses only steps
`kernel_source` implements, `ACTSEARCH_NATIVE` is not `0`, and a compiler has worked in this process. The choice
depends on the input's shape only, so a (candidate, seed) trains the same way alone, in a pack, or after other
candidates ran in the same worker.

A kernel is compiled once per expression and process (~0.1 s with gcc), kept in a small LRU, and unloaded when the
last user lets go of it. The compiled library is written to a temporary folder and unlinked once loaded: nothing
grows on disk over a 10,000-candidate search. If compiling fails (no gcc, no libmvec, an old glibc), one warning
says so and every expression runs on torch's kernels for the rest of the process, at their speed.
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.autograd.forward_ad as fwad

from search_space.kernel_source import LANES as _LANES
from search_space.kernel_source import Unsupported, kernel_source
from search_space.program import Program

__all__ = ["MIN_ELEMENTS", "Kernel", "available", "compile_kernel", "enabled", "run", "run_slices"]

log = logging.getLogger(__name__)

# Below this many elements a call runs torch's operators, where the compile and the per-call overhead would not be
# repaid. It sits below both proxies' activation sites, so both run kernels: the MLP's are 128 x 100 = 12,800, the
# conv proxy's 128 x 16 x 40 = 81,920 (the speed-ups, compiles included, are in bench/RESULTS.md).
MIN_ELEMENTS = 8_192

# -fno-builtin: as builtins, sinf and cosf of one argument merge into a scalar sincosf call (the math functions
# are declared pure in the source instead). -fno-tree-sink and -fno-tree-pre: those passes move a call into one
# side of a branch, and a loop with a call under a branch stays scalar (libmvec has no masked variants).
# -ffp-contract=off: no fused multiply-adds, so each operation rounds as torch's own kernel for it does.
_FLAGS = (
    "-O2", "-fno-builtin", "-fno-tree-sink", "-fno-tree-pre", "-ffp-contract=off", "-march=native", "-fopenmp-simd",
    "-fno-math-errno", "-fno-trapping-math", "-shared", "-fPIC", "-Wl,--no-undefined",
)  # fmt: skip
# gcc's x86 default prefers 256-bit vectors; on AVX-512 machines libmvec's 512-bit functions are faster.
_X86_FLAGS = ("-mprefer-vector-width=512",) if platform.machine().lower() in ("x86_64", "amd64") else ()
_LIBS = ("-lmvec", "-lm")
_COMPILE_TIMEOUT_S = 120
_CACHE_SIZE = 256

_lock = threading.Lock()
_kernels: OrderedDict[str, Kernel] = OrderedDict()
_broken: str | None = None  # why compiling failed in this process, once it has


def enabled() -> bool:
    """Whether expression modules may use compiled kernels: `ACTSEARCH_NATIVE` unset or not `0`."""
    return os.environ.get("ACTSEARCH_NATIVE", "1") != "0"


def available() -> bool:
    """Whether kernels are enabled and no compile has failed in this process."""
    return enabled() and _broken is None


_P, _N = ctypes.c_void_p, ctypes.c_ssize_t


class Kernel:
    """One expression's compiled forward and backward functions (see `kernel_source` for their signatures)."""

    def __init__(self, library: Path) -> None:
        self._lib = ctypes.CDLL(str(library))
        self._forward = self._lib.k_forward
        self._forward.argtypes = [_P, _P, _P, _N, _N]
        self._forward.restype = None
        self._backward = self._lib.k_backward
        self._backward.argtypes = [_P, _P, _P, _P, _P, _N, _N]
        self._backward.restype = None
        weakref.finalize(self, _ctypes.dlclose, self._lib._handle)

    def forward(self, x: torch.Tensor, expanded: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """y for a contiguous float32 x of rows as long as `expanded` (P, period), the parameters per row position;
        written into `out` (contiguous, x's shape) when given."""
        y = torch.empty_like(x) if out is None else out
        period = expanded.shape[1]
        self._forward(x.data_ptr(), y.data_ptr(), expanded.data_ptr(), x.numel() // period, period)
        return y

    def backward(
        self, x: torch.Tensor, grad: torch.Tensor, expanded: torch.Tensor, grad_x: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The input's gradient (into `grad_x` when given), and the parameters' per row position (P, period),
        summed over the rows."""
        grad_x = torch.empty_like(x) if grad_x is None else grad_x
        grad_expanded = torch.zeros_like(expanded)
        period = expanded.shape[1]
        self._backward(x.data_ptr(), grad.data_ptr(), grad_x.data_ptr(), grad_expanded.data_ptr(),
                       expanded.data_ptr(), x.numel() // period, period)  # fmt: skip
        return grad_x, grad_expanded


def _compiler() -> str:
    found = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not found:
        raise OSError("no C compiler found (install gcc, or set CC)")
    return found


def compile_kernel(program: Program) -> Kernel | None:
    """The kernel for `program`, compiled or from this process's cache; None when the program has a step the
    kernels do not implement, or when compiling has failed in this process (logged once)."""
    global _broken
    key = _key(program)
    if key is None:
        return None
    with _lock:
        if key in _kernels:
            _kernels.move_to_end(key)
            return _kernels[key]
        if _broken is not None:
            return None
        try:
            kernel = _build(kernel_source(program))
        except (OSError, subprocess.SubprocessError) as error:
            _broken = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            log.warning(
                "compiled activation kernels are unavailable (%s); expressions run on torch's operators, and search "
                "candidates train about 2x slower. Install gcc and glibc >= 2.35, or set ACTSEARCH_NATIVE=0 to "
                "silence this.", _broken,
            )  # fmt: skip
            return None
        _kernels[key] = kernel
        if len(_kernels) > _CACHE_SIZE:
            _kernels.popitem(last=False)  # unloaded once no module or pending backward holds it
        return kernel


_keys: weakref.WeakKeyDictionary[Program, str | None] = weakref.WeakKeyDictionary()


def _key(program: Program) -> str | None:
    """The hash of the program's kernel source (None: unsupported), generated once per program object."""
    try:
        return _keys[program]
    except KeyError:
        pass
    try:
        key = hashlib.sha256(kernel_source(program).encode()).hexdigest()
    except Unsupported:
        key = None
    _keys[program] = key
    return key


def _build(source: str) -> Kernel:
    with tempfile.TemporaryDirectory(prefix="actsearch-kernel-") as folder:
        c_file, library = Path(folder) / "kernel.c", Path(folder) / "kernel.so"
        c_file.write_text(source)
        done = subprocess.run(
            [_compiler(), *_FLAGS, *_X86_FLAGS, str(c_file), "-o", str(library), *_LIBS],
            capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_S, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise OSError(f"the C compiler failed: {done.stderr.strip()[-500:]}")
        return Kernel(library)  # loaded: the file may go


@dataclass(frozen=True)
class _Layout:
    """How x's memory maps to the kernel's rows, and each row position to its parameter channel.

    A row is `group` consecutive blocks of `block` elements; position j of a block belongs to channel
    j // inner % channels (channels-first blocks are C * inner long, channels-last ones C, scalar ones 1)."""

    block: int
    inner: int
    group: int

    def expand(self, params: torch.Tensor) -> torch.Tensor:
        """(P, C) parameters to (P, period): one value per row position."""
        per_block = params.repeat_interleave(self.inner, dim=1) if self.inner > 1 else params
        return per_block.repeat(1, self.group).contiguous()

    def reduce(self, grad_expanded: torch.Tensor, channels: int) -> torch.Tensor:
        """(P, period) gradients per row position to (P, C), summed in float64."""
        P = grad_expanded.shape[0]
        if P == 0:
            return grad_expanded.new_zeros(0, channels)
        blocks = grad_expanded.double().view(P, self.group, self.block).sum(1)
        return blocks.view(P, channels, -1).sum(2).to(torch.float32)


def _group(rows: int, block: int) -> int | None:
    """Blocks per kernel row: a whole number of vectors and a few hundred elements; None when the rows do not
    divide into whole vectors (odd shapes, which run on torch's kernels)."""
    group = _LANES // math.gcd(block, _LANES)
    if rows % group:
        return None
    while block * group < 256 and rows % (2 * group) == 0:
        group *= 2
    return group


class _Fused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, params, kernel: Kernel, layout: _Layout):  # type: ignore[override]
        expanded = layout.expand(params)
        ctx.save_for_backward(x, expanded)
        ctx.kernel, ctx.layout, ctx.channels = kernel, layout, params.shape[1]
        return kernel.forward(x, expanded)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        x, expanded = ctx.saved_tensors
        grad_x, grad_expanded = ctx.kernel.backward(x, grad.contiguous(), expanded)
        return grad_x, ctx.layout.reduce(grad_expanded, ctx.channels), None, None


class _FusedSlices(torch.autograd.Function):
    """Slice k of x (dim 0) through kernels[k], all written into one output: a packed model's activation site, with
    no per-slice outputs to stack. `_Fused` is its one-slice case, kept apart: routing a module's call through here
    (unsqueeze, a list, slice views) made it ~5 % slower."""

    @staticmethod
    def forward(ctx, x, kernels: list[Kernel], layout: _Layout, *params):  # type: ignore[override]
        expanded = [layout.expand(p) for p in params]
        out = torch.empty_like(x)
        for k, (kernel, values) in enumerate(zip(kernels, expanded, strict=True)):
            kernel.forward(x[k], values, out=out[k])
        ctx.save_for_backward(x, *expanded)
        ctx.kernels, ctx.layout, ctx.channels = kernels, layout, [p.shape[1] for p in params]
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        x, *expanded = ctx.saved_tensors
        grad, grad_x = grad.contiguous(), torch.empty_like(x)
        grads = []
        for k, (kernel, values, channels) in enumerate(zip(ctx.kernels, expanded, ctx.channels, strict=True)):
            _, grad_expanded = kernel.backward(x[k], grad[k], values, grad_x=grad_x[k])
            grads.append(ctx.layout.reduce(grad_expanded, channels))
        return (grad_x, None, None, *grads)


def _stacked(program: Program, params: Mapping[str, torch.Tensor], width: int, like: torch.Tensor) -> torch.Tensor:
    """The program's parameters as one (P, width) float32 tensor, in `param_keys` order (differentiable)."""
    ordered = [params[key].reshape(-1).expand(width) for key in program.param_keys]
    return torch.stack(ordered).to(torch.float32) if ordered else like.new_empty(0, width)


def _eligible(x: torch.Tensor, min_elements: int) -> bool:
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() < min_elements or not available():
        return False
    if torch.compiler.is_compiling():
        return False
    return fwad.unpack_dual(x).tangent is None  # the kernels have no forward-mode derivative


def run(
    program: Program,
    x: torch.Tensor,
    params: Mapping[str, torch.Tensor],
    channels: int | None,
    min_elements: int | None = None,
) -> torch.Tensor | None:
    """`program` applied to x through its compiled kernel, differentiable in x and params; None where not eligible.

    params maps the program's parameter keys to tensors of shape () or (channels,) (broadcast over dimension 1 of x).
    """
    if not _eligible(x, MIN_ELEMENTS if min_elements is None else min_elements) or (
        channels is not None and (x.dim() < 2 or x.shape[1] != channels)
    ):
        return None  # a shape mismatch is for the caller's own path to report
    channels_last = False
    if channels is None:
        xv, block, inner = x.contiguous(), 1, 1
    else:
        channels_last = not x.is_contiguous() and x.movedim(1, -1).is_contiguous()
        xv = x.movedim(1, -1) if channels_last else x.contiguous()
        inner = 1 if channels_last else xv[0, 0].numel()
        block = channels * inner
    group = _group(xv.numel() // block, block)
    kernel = compile_kernel(program) if group is not None else None
    if kernel is None:
        return None
    layout = _Layout(block, inner, group)
    stacked = _stacked(program, params, 1 if channels is None else channels, x)
    y = _Fused.apply(xv, stacked, kernel, layout)
    return y.movedim(-1, 1) if channels_last else y


def run_slices(
    programs: Sequence[Program],
    x: torch.Tensor,
    params: Sequence[Mapping[str, torch.Tensor]],
    channels: int,
    min_elements: int | None = None,
) -> torch.Tensor | None:
    """Slice k of a contiguous x of shape (K, ..., channels) through programs[k] with params[k] (per-channel), all
    into one output; None unless every slice is eligible as in `run` and every program has a kernel.

    Each slice computes exactly what `run` computes for it as a channels-last (B, C, ...) view.
    """
    if not x.is_contiguous() or x.dim() < 2 or x.shape[-1] != channels or len(programs) != x.shape[0]:
        return None
    if not _eligible(x, (MIN_ELEMENTS if min_elements is None else min_elements) * x.shape[0]):
        return None
    group = _group(x[0].numel() // channels, channels)
    if group is None:
        return None
    kernels = [compile_kernel(program) for program in programs]
    if any(kernel is None for kernel in kernels):
        return None
    stacked = [_stacked(program, p, channels, x) for program, p in zip(programs, params, strict=True)]
    return _FusedSlices.apply(x, kernels, _Layout(channels, 1, group), *stacked)
