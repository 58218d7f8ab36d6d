"""The memory of stream heads stays bounded and forgets what it is told to."""

import uuid

from eventsourcing_app.core.heads import StreamHeads
from eventsourcing_app.core.records import StreamHead


def head(version: int) -> StreamHead:
    return StreamHead("ledger.Account", version, f"{version:064d}")


def test_the_least_recently_written_head_goes_first():
    heads = StreamHeads(size=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    heads.remember(first, head(1))
    heads.remember(second, head(1))
    heads.remember(first, head(2))
    heads.remember(third, head(1))
    assert heads.get(second) is None
    assert heads.get(first) == head(2)
    assert heads.get(third) == head(1)
    heads.forget(first)
    assert heads.get(first) is None


def test_size_zero_remembers_nothing():
    heads = StreamHeads(size=0)
    account = uuid.uuid4()
    heads.remember(account, head(1))
    assert heads.get(account) is None
