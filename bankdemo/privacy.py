"""What the bank keeps of a data subject outside its read models: the stored responses of
commands sent with an `Idempotency-Key` quote the owner's name. When a subject is forgotten,
those quotes read as erased; the records stay, so that a retry still gets its first answer."""

from __future__ import annotations

from django.db.models import TextField
from django.db.models.functions import Cast

from bankdemo.models import IdempotencyKey
from eventsourcing_app.core.personal import ERASED


def redact_stored_responses(sender, *, values, using, **kwargs) -> None:
    """Replace the forgotten values in every stored response that quotes one."""
    if not values:
        return
    records = IdempotencyKey.objects.using(using).annotate(text=Cast("response", TextField()))
    seen = set()
    for value in values:
        for record in records.filter(text__contains=value).exclude(pk__in=seen):
            seen.add(record.pk)
            IdempotencyKey.objects.using(using).filter(pk=record.pk).update(
                response=_redacted(record.response, values),
                headers=_redacted(record.headers, values),
            )


def _redacted(value, values):
    if isinstance(value, str):
        for forgotten in values:
            value = value.replace(forgotten, ERASED)
        return value
    if isinstance(value, dict):
        return {key: _redacted(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, values) for item in value]
    return value
