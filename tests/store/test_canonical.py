"""Canonical JSON: the fast encoders give the careful encoder's bytes, bad values are named, and
JSON is read back exactly as the standard library reads it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsourcing_app.core import jsontext
from eventsourcing_app.core.errors import InvalidAppend
from eventsourcing_app.core.hashchain import _encode, canonical_json, fast_canonical_object

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


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.data())
def test_an_object_with_some_values_given_as_text_is_the_walked_object(value, data):
    """The store hashes sealed data with its envelopes' texts given: the same bytes."""
    known_keys = data.draw(st.sets(st.sampled_from(sorted(value))) if value else st.just(set()))
    encoded = {key: outcome(careful, value[key]) for key in known_keys}
    known = {key: text for key, (kind, text) in encoded.items() if kind == "text"}
    made = fast_canonical_object(value, known)
    walked = outcome(careful, value)
    assert made is None or ("text", made) == walked
    if made is None:  # left to the careful encoder: something unusual or bad
        assert outcome(canonical_json, value) == walked


# What a JSONB column can hold: no NUL, no lone surrogate.
database_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
)
database_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | database_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(database_text, inner, max_size=4),
    max_leaves=25,
)


@given(database_json)
def test_reading_json_gives_exactly_what_the_standard_library_gives(value):
    """Integers of any size stay exact (the hash chain covers every digit), floats are the
    same floats, and `NaN` and out-of-range numbers are read as `json` reads them."""
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        for given_as in (text, text.encode()):
            read = jsontext.loads(given_as)
            assert read == json.loads(text)
            assert canonical_json(read) == canonical_json(json.loads(text))
            assert _types(read) == _types(json.loads(text))


@pytest.mark.parametrize("text", ["NaN", "[1e400, -Infinity]", "123456789012345678901234567890"])
def test_what_msgspec_refuses_or_would_round_is_read_by_the_standard_library(text):
    assert repr(jsontext.loads(text)) == repr(json.loads(text))


def _types(value):
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__
