"""Seal everything a log reader can see now into the ledger and print a signed digest."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from eventsourcing_app.ledger.digests import DigestError
from eventsourcing_app.ledger.keys import NoSigningKey
from eventsourcing_app.ledger.sealer import seal_now, write_json
from eventsourcing_app.wiring import get_event_store


class Command(BaseCommand):
    help = (
        "Extend the ledger (the RFC 9162 Merkle tree over the log) with every event a log "
        "reader can see now, seal a digest signed with the ledger key, print it as JSON and "
        "write it to --out. Keep the file outside the database: `verify_events --digest FILE` "
        "checks the log against it later."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", type=Path, help="also write the digest to this file")
        parser.add_argument("--database", default="default", help="database alias")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, out=None, database="default", no_progress=False, **options):
        store = get_event_store(database)
        try:
            with tqdm(unit="event", desc="sealing", disable=no_progress or None) as bar:
                digest = seal_now(store, using=database, progress=bar.update)
        except (NoSigningKey, DigestError) as exc:
            raise CommandError(str(exc)) from None
        if out is not None:
            try:
                write_json(out, digest.as_dict())
            except OSError as exc:
                raise CommandError(f"digest sealed but not written to {out}: {exc}") from None
        self.stdout.write(json.dumps(digest.as_dict(), indent=2, sort_keys=True))
