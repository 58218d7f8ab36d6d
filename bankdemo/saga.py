"""The transfer saga: debit the source, credit the destination, or refund and fail.

It runs as an async projection, so each step (the accounts' and the transfer's new events)
commits in the same transaction as the saga's checkpoint: a crash between steps rolls the
step back and the restarted worker takes it again, never debiting twice or losing money.
"""

from __future__ import annotations

from bankdemo import services
from bankdemo.domain import Refusal, TransferDebited, TransferRequested
from eventsourcing_app.core.context import metadata_context
from eventsourcing_app.projections import Projection, handles, projection


def _caused_by(event):
    """Metadata for a step: the transfer's correlation, caused by the event that triggered it,
    on behalf of the same user (id and name as recorded then) and for the same reason."""
    return metadata_context(
        user_id=event.metadata.get("user_id"),
        username=event.metadata.get("username"),
        reason=event.metadata.get("reason"),
        correlation_id=event.metadata.get("correlation_id"),
        causation_id=f"event:{event.stored.id}",
        trace_id=event.metadata.get("trace_id"),
    )


@projection
class TransferSaga(Projection):
    name = "bank.transfer_saga"
    replayable = False  # it moves money: replaying the log must never run it again

    @handles(TransferRequested)
    def debit_source(self, event, batch):
        transfer = services.transfers().load(event.aggregate_id)
        if transfer.status != transfer.REQUESTED:
            return  # this step was taken already
        with _caused_by(event):
            try:
                source, _ = services.move_money(
                    transfer.source_id, "withdraw", transfer.amount, transfer.currency, transfer.id
                )
            except Refusal as refusal:
                transfer.failed(refusal)
            else:
                transfer.debited(source.version)
            services.transfers().save(transfer)

    @handles(TransferDebited)
    def credit_destination(self, event, batch):
        transfer = services.transfers().load(event.aggregate_id)
        if transfer.status != transfer.DEBITED:
            return
        with _caused_by(event):
            try:
                destination, _ = services.move_money(
                    transfer.destination_id,
                    "deposit",
                    transfer.amount,
                    transfer.currency,
                    transfer.id,
                )
            except Refusal as refusal:
                services.move_money(
                    transfer.source_id, "refund", transfer.amount, transfer.currency, transfer.id
                )
                transfer.failed(refusal)
            else:
                transfer.completed(destination.version)
            services.transfers().save(transfer)
