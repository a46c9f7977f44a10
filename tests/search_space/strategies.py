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


GRAMMAR_CHARS = "x beta12 eps0.5e-+*/(),sigmoidtanhmaxabsexplogsqrtsinc_ \t\n"

# Text for fuzzing the parser: over the grammar's own characters (likely to get deep) and over all of Unicode.
random_text = st.one_of(st.text(alphabet=GRAMMAR_CHARS, max_size=400), st.text(max_size=200))


@st.composite
def mutated_expressions(draw: st.DrawFn) -> str:
    """Return a printed expression with random edits: deletions, insertions, repeats, deep nesting, splices."""
    text = str(draw(expressions))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "repeat", "nest", "splice"]))
        i = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:i] + text[i + 1 :]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(GRAMMAR_CHARS)) + text[i:]
        elif kind == "replace":
            text = text[:i] + draw(st.text(max_size=3)) + text[i + 1 :]
        elif kind == "repeat":
            text = text * draw(st.integers(2, 40))
        elif kind == "nest":
            depth = draw(st.integers(1, 2000))
            text = draw(st.sampled_from(["(", "-", "exp(", "-(" ])) * depth + text + ")" * depth
        else:
            j = draw(st.integers(0, len(text)))
            text = text[:i] + text[min(i, j) : max(i, j)] + text[i:]
    return text
