"""Read models of the sample accounts."""

from django.db import models


class Balance(models.Model):
    account_id = models.UUIDField(primary_key=True)
    owner = models.CharField(max_length=100, blank=True, default="")
    balance = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(null=True)


class Movement(models.Model):
    account_id = models.UUIDField(db_index=True)
    version = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    event_id = models.BigIntegerField(unique=True)


class DailyCount(models.Model):
    day = models.DateField(primary_key=True)
    deposits = models.PositiveIntegerField(default=0)
    withdrawals = models.PositiveIntegerField(default=0)
    counted_at = models.DateTimeField(null=True)


class Touch(models.Model):
    """Written by the fragile projection, to see what a failed batch left behind."""

    event_id = models.BigIntegerField(primary_key=True)
