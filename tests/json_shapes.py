"""Hypothesis strategies for server answers of the wrong shape, shared by
the fuzz tests of both providers."""

from hypothesis import strategies as st

#: A value of some other type than a field should have.
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 99),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.integers(-1, 20), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
#: Any JSON value, nested a little.
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20,
)
#: Nested past the JSON reader's recursion limit.
DEEP = "[" * 100_000 + "]" * 100_000
