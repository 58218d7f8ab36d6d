"""An event at schema v4 whose upcaster chain has a gap unless CHECKAPP_CHAIN=complete."""

import dataclasses
import os

from eventsourcing_app.domain import DomainEvent, event_type, upcaster


@event_type("checkapp.OrderPlaced", version=4)
@dataclasses.dataclass(frozen=True)
class OrderPlaced(DomainEvent):
    total: str


def same(data: dict) -> dict:
    return data


upcaster("checkapp.OrderPlaced", from_version=1)(same)
upcaster("checkapp.OrderPlaced", from_version=3)(same)
if os.environ.get("CHECKAPP_CHAIN") == "complete":
    upcaster("checkapp.OrderPlaced", from_version=2)(same)
