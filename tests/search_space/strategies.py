"""Hypothesis strategies for expression trees, shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from search_space.expr import BINARY_OPS, BinOp, Call, Const, Eps, Neg, Param, Var
from search_space.functions import FUNCTIONS

_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(float),
    st.floats(min_value=0.0, max_value=1e300, allow_nan=False, allow_infinity=False),
)
leaves = st.one_of(
    st.just(Var()),
    st.builds(Const, _numbers),
    st.just(Eps()),
    st.sampled_from(["beta", "beta1", "beta2", "beta12"]).map(Param),
)


def _extend(children: st.SearchStrategy) -> st.SearchStrategy:
    unary_calls = [name for name, row in FUNCTIONS.items() if row.arity == 1]
    binary_calls = [name for name, row in FUNCTIONS.items() if row.arity == 2]
    return st.one_of(
        st.builds(Neg, children),
        st.builds(BinOp, st.sampled_from(BINARY_OPS), children, children),
        st.builds(lambda name, arg: Call(name, (arg,)), st.sampled_from(unary_calls), children),
        st.builds(lambda name, a, b: Call(name, (a, b)), st.sampled_from(binary_calls), children, children),
    )


expressions = st.recursive(leaves, _extend, max_leaves=24)
