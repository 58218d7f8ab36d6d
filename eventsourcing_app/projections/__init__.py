"""Projections: read models built from the log by per-event-type handlers, in batches."""

from eventsourcing_app.projections.base import (
    Batch,
    HandlerFailed,
    Projected,
    Projection,
    ProjectionRegistry,
    apply_inline,
    handles,
    projection,
    registry,
)

__all__ = [
    "Batch",
    "HandlerFailed",
    "Projected",
    "Projection",
    "ProjectionRegistry",
    "apply_inline",
    "handles",
    "projection",
    "registry",
]
