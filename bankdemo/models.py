"""The bank's read models (built by projections) and the idempotency keys of the command API."""

from django.conf import settings
from django.db import models


class AccountBalance(models.Model):
    """One row per account: what `GET /api/accounts/` lists (inline: read-your-writes)."""

    account_id = models.UUIDField(primary_key=True)
    owner = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    balance = models.DecimalField(max_digits=20, decimal_places=3, default=0)
    overdraft_limit = models.DecimalField(max_digits=20, decimal_places=3, default=0)
    status = models.CharField(max_length=10, default="open")
    version = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "account_balances"
        indexes = [models.Index(fields=["owner"]), models.Index(fields=["status", "currency"])]

    def __str__(self) -> str:
        return f"{self.owner} {self.balance} {self.currency}"


class LedgerEntry(models.Model):
    """One row per movement with the balance after it: account statements (inline)."""

    account_id = models.UUIDField()
    version = models.PositiveIntegerField()
    event_id = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=10)
    amount = models.DecimalField(max_digits=20, decimal_places=3)
    balance_after = models.DecimalField(max_digits=20, decimal_places=3)
    currency = models.CharField(max_length=3)
    transfer_id = models.UUIDField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "ledger_entries"
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=["account_id", "version"], name="ledger_account_version")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} on {self.account_id} v{self.version}"


class DailyTotal(models.Model):
    """Deposits and withdrawals per day and currency: the dashboard (async)."""

    key = models.CharField(max_length=20, primary_key=True)  # "2026-11-26:EUR"
    day = models.DateField()
    currency = models.CharField(max_length=3)
    deposits = models.DecimalField(max_digits=24, decimal_places=3, default=0)
    withdrawals = models.DecimalField(max_digits=24, decimal_places=3, default=0)
    deposit_count = models.PositiveIntegerField(default=0)
    withdrawal_count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "daily_totals"
        indexes = [models.Index(fields=["day", "currency"])]

    def __str__(self) -> str:
        return self.key


class TransferStatus(models.Model):
    """Where each transfer stands: `GET /api/transfers/{id}/` (async)."""

    transfer_id = models.UUIDField(primary_key=True)
    source_id = models.UUIDField()
    destination_id = models.UUIDField()
    amount = models.DecimalField(max_digits=20, decimal_places=3)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10)
    failure_code = models.CharField(max_length=40, blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    refunded = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "transfers"
        verbose_name_plural = "transfer statuses"

    def __str__(self) -> str:
        return f"transfer {self.transfer_id} {self.status}"


class IdempotencyKey(models.Model):
    """The first response to a command sent with an `Idempotency-Key`, kept for its retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "idempotency_keys"
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key")]

    def __str__(self) -> str:
        return f"{self.key} of {self.user_id}"


class StatementNotification(models.Model):
    """A notice per account movement, recorded by the downstream consumer of the Kafka topic
    (the other side of the wire); one per event, however often it is delivered."""

    event_id = models.BigIntegerField(unique=True)
    account_id = models.UUIDField(db_index=True)
    kind = models.CharField(max_length=30)
    amount = models.CharField(max_length=30)
    currency = models.CharField(max_length=3)
    happened_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "statement_notifications"

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} on {self.account_id}"
