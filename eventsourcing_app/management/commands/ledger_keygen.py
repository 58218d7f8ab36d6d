"""Make a new Ed25519 signing key for the ledger's digests."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from eventsourcing_app import conf
from eventsourcing_app.ledger import digests


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 private key (PKCS#8 PEM, readable by its owner only) to FILE, for "
        "LEDGER_SIGNING_KEY_FILE. Keep it out of the repository and out of the database; an "
        "existing file is never overwritten."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            type=Path,
            nargs="?",
            help="where to write the key (default: the LEDGER_SIGNING_KEY_FILE setting)",
        )
        parser.add_argument(
            "--if-missing", action="store_true", help="exit 0 without a change when FILE exists"
        )

    def handle(self, *args, file=None, if_missing=False, **options):
        if file is None:
            if not conf.get("LEDGER_SIGNING_KEY_FILE"):
                raise CommandError("name a FILE: no LEDGER_SIGNING_KEY_FILE is configured")
            file = Path(conf.get("LEDGER_SIGNING_KEY_FILE"))
        if file.exists():
            if if_missing:
                return
            raise CommandError(f"{file} exists: a signing key is never overwritten")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise CommandError(f"cannot write {file}: {exc.strerror}") from None
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(digests.generate_private_key_pem())
        key = digests.load_private_key(file.read_bytes())
        self.stdout.write(f"wrote {file} (key id {digests.key_id(key.public_key())})")
