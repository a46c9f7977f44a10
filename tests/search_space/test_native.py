"""Compiled expression kernels (search_space.native): the same values and gradients as the torch program they replace,
in every layout the models use, and a clean fall-back to torch wherever they cannot run."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
import torch.autograd.forward_ad as fwad

from search_space import OPERATORS, native, parse
from search_space.kernel_source import KERNEL_FUNCTIONS, kernel_source
from search_space.program import compile_expr, run

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler on this machine")

# Values across every function's interesting range: 0, tiny, around 1, where sinc switches to its series, where
# softplus turns linear, where exp overflows, and negatives (NaN for log and sqrt on both paths).
_SPECIAL = [0.0, 1e-30, -1e-30, 1e-3, -1e-3, 0.0999, 0.1001, 1.0, -1.0, 19.9, 20.1, 50.0, 90.0, -90.0]


def _inputs(n: int = 4096) -> torch.Tensor:
    grid = torch.linspace(-6.0, 6.0, n - len(_SPECIAL))
    return torch.cat([grid, torch.tensor(_SPECIAL)])


def _both(text: str, x: torch.Tensor, channels: int | None = None, param_value: float = 0.7):
    """(value, x-gradient, parameter gradients) through the kernel, through torch's program in float32, and through
    torch's program in float64 (the reference both are judged against)."""
    module = parse(text).to_module(channels=channels)
    with torch.no_grad():
        for param in module.parameters():
            param.fill_(param_value)
    results = []
    for how in ("native", "torch", "float64"):
        module.zero_grad()
        leaf = (x.double() if how == "float64" else x).detach().clone().requires_grad_()
        if how == "native":
            y = native.run(module.program, leaf, module.params, channels, min_elements=0)
            assert y is not None, f"{text}: the kernel did not run"
        else:
            params = {k: module._shaped(p, leaf) for k, p in module.params.items()}
            y = run(module.program, [leaf], params)
            y = y.expand_as(leaf) if isinstance(y, torch.Tensor) else torch.full_like(leaf, float(y))
        weight = torch.linspace(0.5, 1.5, y.numel(), dtype=y.dtype).view_as(y)  # a gradient that differs per element
        (y * weight).sum().backward()
        grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.params.values()]
        grad_x = leaf.grad.clone() if leaf.grad is not None else torch.zeros_like(leaf)  # f may ignore x
        results.append((y.detach(), grad_x, grads))
    return results


def _assert_close(actual: torch.Tensor, torch32: torch.Tensor, reference: torch.Tensor, what: str) -> None:
    """NaN and inf exactly where torch's float32 program has them; elsewhere about as close to the float64 reference
    as torch's float32 program is: its largest and 99th-percentile errors within 8x torch's (libm's float32
    functions are accurate to a few ulp, Sleef's to one). Compared over the whole input, not point by point: where
    terms cancel, either float32 formula may be the luckier one at a given point. A wrong formula is off everywhere."""
    assert torch.equal(actual.isnan(), torch32.isnan()), f"{what}: NaN positions differ"
    infinite = torch32.isinf()
    assert torch.equal(actual[infinite], torch32[infinite]), f"{what}: infinities differ"
    finite = torch32.isfinite() & reference.isfinite()
    if not finite.any():
        return
    ref = reference[finite]
    scale = ref.abs() + 1e-3 * float(ref.abs().median()) + 1e-30
    ours = ((actual.double()[finite] - ref).abs() / scale).double()
    theirs = ((torch32.double()[finite] - ref).abs() / scale).double()
    for name, stat in (("largest", torch.max), ("99th percentile", lambda t: torch.quantile(t, 0.99))):
        assert float(stat(ours)) <= 8 * float(stat(theirs)) + 1e-5, (
            f"{what}: {name} relative error {float(stat(ours)):.3g} against torch's {float(stat(theirs)):.3g}"
        )


def _assert_same(text: str, x: torch.Tensor, channels: int | None = None) -> None:
    (y, gx, gp), (y32, gx32, gp32), (y64, gx64, gp64) = _both(text, x, channels)
    _assert_close(y, y32, y64, f"{text}: value")
    _assert_close(gx, gx32, gx64, f"{text}: input gradient")
    for got, got32, want in zip(gp, gp32, gp64, strict=True):
        _assert_close(got, got32, want, f"{text}: parameter gradient")


@pytest.mark.parametrize("name", KERNEL_FUNCTIONS)
def test_every_function_matches_torch(name: str) -> None:
    text = f"{name}(x, 0.5)" if name in ("max", "min") else f"{name}(x)"
    _assert_same(text, _inputs())


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_matches_torch(name: str) -> None:
    op = OPERATORS[name]
    operands = [parse("x")] if op.arity == 1 else [parse("x"), parse("sin(x) - 0.25")]
    _assert_same(str(op(*operands)), _inputs())


@pytest.mark.parametrize(
    "text",
    [
        "max(x, beta * x)",  # two tensors, ties at 0
        "min(sin(x), cos(x))",
        "max(x, 0) + beta * min(x, 0)",
        "x ** 2.5",  # a general constant power (NaN below 0 on both paths)
        "x ** 0",
        "x / (beta * x + eps)",
        "beta",  # does not depend on x: gradient 0
        "x * sigmoid(beta1 * x) + beta1",  # a named parameter used twice
        "sinc(atan(x) - exp(x)) + beta * (min(x, 0) - sinc(atan(x) - exp(x)))",  # a random two-unit candidate
    ],
)
def test_composite_expressions_match_torch(text: str) -> None:
    _assert_same(text, _inputs())


@pytest.mark.parametrize("shape", [(8, 16, 40), (8, 100), (8, 3, 10), (3, 64, 10)])
def test_per_channel_parameters_in_channels_first_layout(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 2
    _assert_same("x * sigmoid(beta * x) + beta * abs(x)", x, channels=shape[1])


@pytest.mark.parametrize("channels,length", [(16, 40), (100, 2), (5, 8)])
def test_per_channel_parameters_in_channels_last_layout(channels: int, length: int) -> None:
    # The packed conv net hands each slot's activation a (B, C, L) view of (B, L, C) memory.
    x = torch.randn(6, length, channels, generator=torch.Generator().manual_seed(1)).transpose(1, 2)
    assert not x.is_contiguous()
    (y, _, _), _, _ = _both("max(x, beta) - softplus(beta * x)", x, channels=channels)
    assert y.stride() == x.stride(), "the output keeps the input's memory layout"
    _assert_same("max(x, beta) - softplus(beta * x)", x, channels=channels)


def test_rows_are_grouped_into_whole_vectors_or_left_to_torch() -> None:
    # Rows of 100 channels: four of them make 25 vectors. Seven rows cannot be grouped so: torch runs them.
    module = parse("erf(x) * beta + x ** 3").to_module(channels=100)
    assert native.run(module.program, torch.randn(8, 100), module.params, 100, min_elements=0) is not None
    odd = torch.randn(7, 100)
    assert native.run(module.program, odd, module.params, 100, min_elements=0) is None
    torch.testing.assert_close(module(odd), torch.erf(odd) + odd**3)
    for n in (16, 4096, 8192 + 16):  # scalar parameters: any multiple of a vector
        _assert_same("erf(x) * beta + x ** 3", torch.linspace(-3, 3, n))


def test_module_uses_the_kernel_for_large_inputs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    module = parse("x * tanh(softplus(x))").to_module()
    small, large = torch.randn(100), torch.randn(native.MIN_ELEMENTS)
    assert native.run(module.program, small, module.params, None) is None
    assert native.run(module.program, large, module.params, None) is not None
    monkeypatch.setenv("ACTSEARCH_NATIVE", "0")
    assert native.run(module.program, large, module.params, None) is None
    torch.testing.assert_close(module(large), large * torch.tanh(torch.nn.functional.softplus(large)))


def test_no_kernel_where_it_cannot_apply() -> None:
    big = torch.randn(native.MIN_ELEMENTS)
    tensor_power = parse("x ** x").to_module()
    assert native.run(tensor_power.program, big, tensor_power.params, None) is None  # not implemented: torch runs it
    swish = parse("x * sigmoid(x)").to_module()
    assert native.run(swish.program, big.double(), swish.params, None) is None  # float64 (the fingerprints, plots)
    assert native.run(swish.program, big.to(torch.bfloat16), swish.params, None) is None
    with fwad.dual_level():  # forward-mode AD: the kernels have no forward derivative
        dual = fwad.make_dual(big, torch.ones_like(big))
        assert native.run(swish.program, dual, swish.params, None) is None
        tangent = fwad.unpack_dual(swish(dual)).tangent
    assert tangent is not None
    per_channel = parse("beta * x").to_module(channels=4)
    with pytest.raises(ValueError, match="channels=4"):  # a shape mismatch is still reported by the module
        per_channel(torch.randn(native.MIN_ELEMENTS, 3))


def test_a_failing_compiler_falls_back_once_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(native, "_broken", None)
    monkeypatch.setattr(native, "_kernels", type(native._kernels)())
    monkeypatch.setenv("CC", shutil.which("false") or "/bin/false")
    module = parse("cos(x) * exp(-beta * x ** 2)").to_module()
    x = torch.randn(native.MIN_ELEMENTS)
    with caplog.at_level(logging.WARNING, logger="search_space.native"):
        assert native.run(module.program, x, module.params, None) is None
        assert native.run(module.program, x, module.params, None) is None
        y = module(x)
    assert len([r for r in caplog.records if "unavailable" in r.message]) == 1
    assert not native.available()
    torch.testing.assert_close(y, torch.cos(x) * torch.exp(-(x**2)))


def test_kernels_are_compiled_once_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_kernels", type(native._kernels)())
    monkeypatch.setattr(native, "_CACHE_SIZE", 2)
    programs = [compile_expr(parse(text)) for text in ("sin(x) + 1", "sin(x) + 2", "sin(x) + 3")]
    first = native.compile_kernel(programs[0])
    assert native.compile_kernel(compile_expr(parse("sin(x) + 1"))) is first  # same source, same kernel
    for program in programs[1:]:
        native.compile_kernel(program)
    assert len(native._kernels) == 2
    x = torch.randn(64)
    y = first.forward(x, torch.ones(0, 64))  # evicted from the cache, but held here: still loaded
    torch.testing.assert_close(y, torch.sin(x) + 1)


def test_source_contains_no_text_from_the_expression() -> None:
    # Parameter names, function names and numbers reach the C source only as operator templates and hex floats.
    source = kernel_source(compile_expr(parse("beta7 * x + sinh(0.1 * x)")))
    assert "beta7" not in source and "0.1" not in source and "0x1.99999" in source
