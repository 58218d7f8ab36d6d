"""Charts on an aggregate's timeline: a series an aggregate type registers, drawn as an SVG line.

The app knows no domain: an app registers the value to plot for its aggregate type, e.g.
`register_series("bank.Account", "balance", lambda state: state["balance"])`, where `state`
is the state after each event as the timeline shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

WIDTH, HEIGHT, PAD = 720, 180, 10


@dataclass(frozen=True)
class Series:
    """What to plot for one aggregate type: a label and the value read from each state."""

    label: str
    value: Callable[[dict[str, Any]], Any]


_series: dict[str, Series] = {}


def register_series(aggregate_type: str, label: str, value: Callable[[dict[str, Any]], Any]):
    """Plot `value(state)` over the events on the timelines of `aggregate_type`."""
    _series[aggregate_type] = Series(label, value)


def chart(aggregate_type: str, states: Sequence[dict[str, Any]]) -> dict | None:
    """Return the points of the registered series over `states`, or None when there is none
    (no series registered, fewer than two points, or a state without a number)."""
    series = _series.get(aggregate_type)
    if series is None:
        return None
    values = []
    for state in states:
        try:
            values.append(Decimal(str(series.value(state))))
        except (InvalidOperation, KeyError, TypeError, ValueError):
            return None
    if len(values) < 2:
        return None
    low, high = min([*values, Decimal(0)]), max([*values, Decimal(0)])
    span = (high - low) or Decimal(1)

    def y(value: Decimal) -> float:
        return float(PAD + (high - value) / span * (HEIGHT - 2 * PAD))

    step = (WIDTH - 2 * PAD) / (len(values) - 1)
    points = " ".join(f"{PAD + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    return {"label": series.label, "width": WIDTH, "height": HEIGHT, "points": points,
            "zero": f"{y(Decimal(0)):.1f}", "low": low, "high": high,
            "last": values[-1]}  # fmt: skip
