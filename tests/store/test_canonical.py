"""Canonical JSON: the fast encoder gives the careful encoder's bytes, and bad values are named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsourcing_app.core.errors import InvalidAppend
from eventsourcing_app.core.hashchain import _encode, canonical_json

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


def careful(value) -> str:
    parts: list[str] = []
    _encode(value, "data", parts.append, 0)
    return "".join(parts)


@given(json_values)
def test_fast_encoder_matches_the_careful_one(value):
    assert outcome(careful, value) == outcome(canonical_json, value)


def outcome(encode, value) -> tuple[str, str]:
    """What `encode` made of `value`: its text, or the refusal's message."""
    try:
        return "text", encode(value)
    except InvalidAppend as refusal:
        return "refused", str(refusal)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 10, "a": [1.50, -0.0, 12]}, '{"a":[1.5,0,12],"b":1E+1}'),
        ({"q": 'say "hi"\n'}, '{"q":"say \\"hi\\"\\n"}'),
        ({"é": "ü"}, '{"é":"ü"}'),
    ],
)
def test_canonical_form(value, expected):
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {"b": "x\x00"}}, "data['a']['b'] contains a NUL character"),
        ({"a": [1, float("nan")]}, "data['a'][1] is nan"),
        ({"a": {1: 2}}, "data['a'] has the key 1"),
        ({"a": {1}}, "data['a'] is a set"),
    ],
)
def test_bad_values_are_named_by_path(value, message):
    with pytest.raises(InvalidAppend, match=message.replace("[", r"\[").replace("]", r"\]")):
        canonical_json(value)


def test_nesting_limit_is_the_same_for_both_encoders():
    deep: object = "x"
    for _ in range(64):
        deep = [deep]
    assert canonical_json(deep) == careful(deep)
    with pytest.raises(InvalidAppend, match="nested more than 64 levels"):
        canonical_json([deep])
