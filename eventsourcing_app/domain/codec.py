"""Turn events and aggregate state into plain JSON values and back, exactly.

Events are encoded by their dataclass field types, so stored data stays plain JSON
(`"amount": "10.00"`). Aggregate state for snapshots has no declared types, so its special
values carry a tag (`{"$decimal": "10.00"}`). Money is never a float: `Decimal` travels as text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from eventsourcing_app.core.errors import EventDecodingError, RegistrationError

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"expected a decimal string, got {value!r}")
    return Decimal(value)


def _converters(hint: Any) -> tuple[Convert, Convert]:
    """Return (encode, decode) for values of the annotated type `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            raise RegistrationError(f"unions other than `X | None` are not supported: {hint}")
        encode, decode = _converters(options[0])
        return (
            lambda v: None if v is None else encode(v),
            lambda v: None if v is None else decode(v),
        )
    if origin in (list, tuple, set, frozenset):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise RegistrationError(f"only tuple[X, ...] is supported, not {hint}")
        encode, decode = _converters(args[0]) if args else (_same, _same)
        return (lambda v: [encode(x) for x in v], lambda v: origin(decode(x) for x in v))
    if origin is dict:
        encode, decode = _converters(args[1]) if args else (_same, _same)
        return (
            lambda v: {k: encode(x) for k, x in v.items()},
            lambda v: {k: decode(x) for k, x in v.items()},
        )
    if hint is Decimal:
        return str, _decimal
    if hint is uuid.UUID:
        return str, uuid.UUID
    if hint is dt.datetime:
        return dt.datetime.isoformat, dt.datetime.fromisoformat
    if hint is dt.date:
        return dt.date.isoformat, dt.date.fromisoformat
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return (lambda v: v.value), hint
    if hint is float:
        return _same, float
    if dataclasses.is_dataclass(hint):
        codec = Codec.for_dataclass(hint)
        return codec.encode, (lambda v: codec.decode(v, what=hint.__qualname__))
    return _same, _same


class Codec:
    """Encode and decode one dataclass by its fields' declared types, built once per class."""

    def __init__(self, cls: type, fields: list[tuple[str, Convert, Convert]]) -> None:
        self.cls = cls
        self.fields = fields
        self.names = frozenset(name for name, _, _ in fields)

    @classmethod
    def for_dataclass(cls, data_class: type) -> Codec:
        hints = typing.get_type_hints(data_class)
        fields = [
            (field.name, *_converters(hints[field.name]))
            for field in dataclasses.fields(data_class)
            if field.init
        ]
        return cls(data_class, fields)

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: encode(getattr(obj, name)) for name, encode, _ in self.fields}

    def decode(self, data: dict[str, Any], *, what: str) -> Any:
        if not isinstance(data, dict):
            raise EventDecodingError(f"{what}: data is {type(data).__name__}, not an object")
        missing = self.names - data.keys()
        extra = data.keys() - self.names
        if missing or extra:
            raise EventDecodingError(
                f"{what}: data does not fit {self.cls.__qualname__} "
                f"(missing {sorted(missing)}, unexpected {sorted(extra)}); "
                "is an upcaster missing?"
            )
        try:
            values = {name: decode(data[name]) for name, _, decode in self.fields}
        except (TypeError, ValueError, InvalidOperation) as exc:
            raise EventDecodingError(f"{what}: {exc}") from None
        return self.cls(**values)


TAGS: dict[str, Convert] = {
    "$decimal": Decimal,
    "$uuid": uuid.UUID,
    "$datetime": dt.datetime.fromisoformat,
    "$date": dt.date.fromisoformat,
    "$tuple": lambda items: tuple(decode_tagged(x) for x in items),
    "$set": lambda items: {decode_tagged(x) for x in items},
    "$frozenset": lambda items: frozenset(decode_tagged(x) for x in items),
    "$dict": lambda items: {k: decode_tagged(x) for k, x in items.items()},
}


def encode_tagged(value: Any, path: str = "state") -> Any:
    """Return `value` as JSON, tagging the types JSON lacks; raise TypeError on others."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, list):
        return [encode_tagged(x, f"{path}[{i}]") for i, x in enumerate(value)]
    if isinstance(value, (tuple, set, frozenset)):
        tag = {tuple: "$tuple", set: "$set", frozenset: "$frozenset"}[type(value)]
        return {tag: [encode_tagged(x, f"{path}[]") for x in value]}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{path} has keys that are not strings")
        items = {k: encode_tagged(x, f"{path}[{k!r}]") for k, x in value.items()}
        return {"$dict": items} if any(k.startswith("$") for k in value) else items
    raise TypeError(f"{path} is a {type(value).__name__}; override snapshot_state() to store it")


def decode_tagged(value: Any) -> Any:
    """Return the value `encode_tagged` encoded."""
    if isinstance(value, list):
        return [decode_tagged(x) for x in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key in TAGS:
                return TAGS[key](inner)
        return {k: decode_tagged(x) for k, x in value.items()}
    return value
