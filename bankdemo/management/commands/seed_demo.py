"""Give a fresh site a little bank history to show."""

from django.core.management.base import BaseCommand

from bankdemo import services
from bankdemo.models import AccountBalance
from eventsourcing_app.context import metadata_context

DEMO = [("Ada Lovelace", "EUR", ["250.00", "-40.00"]), ("Grace Hopper", "EUR", ["1200.00"])]


class Command(BaseCommand):
    help = "Open demo accounts with a few movements and a transfer (once; later runs do nothing)."

    def handle(self, *args, **options):
        if AccountBalance.objects.exists():
            self.stdout.write("demo data: already there")
            return
        opened = []
        with metadata_context(user_id="seed_demo", correlation_id="demo-seed"):
            for owner, currency, movements in DEMO:
                account, _ = services.account_open(owner=owner, currency=currency)
                for amount in movements:
                    if amount.startswith("-"):
                        services.account_withdraw(account_id=account.id, amount=amount[1:])
                    else:
                        services.account_deposit(account_id=account.id, amount=amount)
                opened.append(account.id)
            services.transfer_request(source_id=opened[1], destination_id=opened[0], amount="99.95")
        services.settle_transfers()
        self.stdout.write(f"demo data: {len(opened)} accounts and a transfer")
