"""Charts on an aggregate's timeline: a series an aggregate type registers, drawn as an SVG line.

The app knows no domain: an app registers the value to plot for its aggregate type, e.g.
`register_series("bank.Account", "balance", lambda state: state["balance"])`, where `state`
is the state after each event as the timeline shows it. The line is plotted against time (x is
each event's `created_at`, UTC), between the lowest and the highest value (not forced to 0),
with dated ticks on the time axis and amounts on the value axis.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from eventsourcing_app.audit.display import amount_text, utc

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 90, 20, 10, 30  # room for the amount and date tick labels
TICKS = 4  # intervals on each axis: 5 labels


@dataclass(frozen=True)
class Series:
    """What to plot for one aggregate type: a label, the value read from each state, and how an
    amount reads (`text(value, state)`, e.g. in the state's currency)."""

    label: str
    value: Callable[[dict[str, Any]], Any]
    text: Callable[[Decimal, dict[str, Any]], str] | None = None


_series: dict[str, Series] = {}


def register_series(
    aggregate_type: str,
    label: str,
    value: Callable[[dict[str, Any]], Any],
    text: Callable[[Decimal, dict[str, Any]], str] | None = None,
):
    """Plot `value(state)` over the events on the timelines of `aggregate_type`; `text` writes
    an amount of it (the tick labels, low, high, now)."""
    _series[aggregate_type] = Series(label, value, text)


def chart(
    aggregate_type: str,
    states: Sequence[dict[str, Any]],
    times: Sequence[dt.datetime] | None = None,
) -> dict | None:
    """Return the points of the registered series over `states` at `times` (one per state;
    without them, evenly spaced), or None when there is none (no series registered, fewer than
    two points, or a state without a number)."""
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
    last_state = states[-1]

    def text(value: Decimal) -> str:
        return series.text(value, last_state) if series.text else amount_text(value, None)

    low, high = min(values), max(values)
    span = (high - low) or Decimal(1)
    if high == low:  # a flat line: centred in a band of one unit
        low, high = low - span / 2, high + span / 2
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: Decimal) -> float:
        return float(TOP + (high - value) / (high - low) * plot_h)

    if times is not None and len(times) == len(values):
        start, end = times[0], times[-1]
        seconds = (end - start).total_seconds() or 1.0
        xs = [LEFT + (t - start).total_seconds() / seconds * plot_w for t in times]
        x_ticks = [
            {"x": f"{LEFT + i * plot_w / TICKS:.1f}",
             "label": utc(start + (end - start) * i / TICKS)}
            for i in range(TICKS + 1)
        ]  # fmt: skip
    else:
        xs = [LEFT + i * plot_w / (len(values) - 1) for i in range(len(values))]
        x_ticks = []
    levels = [high - (high - low) * i / TICKS for i in range(TICKS + 1)]
    y_ticks = [{"y": f"{y(level):.1f}", "label": text(level)} for level in levels]
    points = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in zip(xs, values, strict=True))
    zero = f"{y(Decimal(0)):.1f}" if low <= 0 <= high else None
    return {"label": series.label, "width": WIDTH, "height": HEIGHT, "points": points,
            "left": LEFT, "right": WIDTH - RIGHT, "top": TOP, "bottom": HEIGHT - BOTTOM,
            "label_x": LEFT - 6, "label_y": HEIGHT - BOTTOM + 16,
            "x_ticks": x_ticks, "y_ticks": y_ticks, "zero": zero,
            "low": text(min(values)), "high": text(max(values)), "last": text(values[-1]),
            "start": utc(times[0]) if x_ticks else None,
            "end": utc(times[-1]) if x_ticks else None}  # fmt: skip
