"""Check the event log's hash chains, the ledger and, given one, a digest kept elsewhere."""

import json
import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from eventsourcing_app.core.verification import verify_chains
from eventsourcing_app.ledger import digests, keys
from eventsourcing_app.ledger.integrity import (
    check_against_digest,
    check_ledger,
    stream_integrity,
)
from eventsourcing_app.ledger.tree import LedgerTree
from eventsourcing_app.wiring import get_recorder

NO_SUCH_STREAM = 2


class Command(BaseCommand):
    help = (
        "Recompute every event's SHA-256 hash and check each stream's chain, then check the "
        "ledger tables against the rows. With --digest FILE (a digest kept outside the "
        "database), also recompute the Merkle root of the log's first tree_size events and "
        "compare it with the signed one. Exits 0 when everything holds, 1 naming the first "
        "problem, and 2 when --aggregate names a stream that does not exist."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--aggregate", type=uuid.UUID, help="check only this aggregate's stream"
        )
        parser.add_argument(
            "--digest", type=Path, help="a digest file (ledger_digest --out) to check against"
        )
        parser.add_argument(
            "--public-key",
            type=Path,
            help="the key the digest must be signed with (default: the configured signing key)",
        )
        parser.add_argument("--database", default="default", help="database alias to check")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args, aggregate=None, digest=None, public_key=None, **options):
        database, quiet = options.get("database", "default"), options.get("no_progress", False)
        recorder = get_recorder(database)
        if aggregate is not None:
            self._check_stream(recorder, aggregate, database)
            return
        sealed = self._read_digest(digest, public_key) if digest is not None else None
        problems = []
        if sealed is not None:
            with tqdm(total=sealed.tree_size, unit="event", desc="against the digest",
                      disable=quiet or None) as bar:  # fmt: skip
                problem = check_against_digest(recorder, sealed, database, progress=bar.update)
            if problem:
                problems.append(f"against the digest of {sealed.tree_size} events: {problem}")
        report = self._check_chains(recorder, quiet)
        problems += [str(chain_break) for chain_break in report.breaks]
        with tqdm(total=LedgerTree(database).size(), unit="leaf", desc="checking the ledger",
                  disable=quiet or None) as bar:  # fmt: skip
            ledger = check_ledger(recorder, database, progress=bar.update)
        problems += [f"ledger: {problem}" for problem in ledger.problems]
        summary = (
            f"{report.events_checked} events in {report.streams_checked} streams checked, "
            f"{report.break_count} broken"
        )
        sealed_summary = f"{ledger.leaves_checked} ledger leaves checked" + (
            f", the log matches the digest of {sealed.tree_size} events" if sealed else ""
        )
        if not problems:
            self.stdout.write(self.style.SUCCESS(f"{summary}: the log is intact."))
            self.stdout.write(self.style.SUCCESS(f"{sealed_summary}: the ledger is intact."))
            return
        self.stdout.write(f"{summary}; {len(problems)} problems:")
        for problem in problems:
            self.stdout.write(f"  {problem}")
        raise CommandError(f"the event log was tampered with; first broken: {problems[0]}")

    def _check_stream(self, recorder, aggregate: uuid.UUID, database: str) -> None:
        report = stream_integrity(recorder, aggregate, database)
        if report.events_checked == 0 and not report.breaks:
            raise CommandError(
                f"stream {aggregate} does not exist: no event has that aggregate id",
                returncode=NO_SUCH_STREAM,
            )
        summary = (
            f"{report.events_checked} events in {report.streams_checked} streams checked, "
            f"{report.break_count} broken"
        )
        if report.intact:
            self.stdout.write(self.style.SUCCESS(f"{summary}: the log is intact."))
            return
        self.stdout.write(f"{summary}:")
        for chain_break in report.breaks:
            self.stdout.write(f"  {chain_break}")
        raise CommandError(f"the stream was tampered with; first broken: {report.breaks[0]}")

    def _check_chains(self, recorder, quiet: bool):
        with tqdm(total=recorder.count(), unit="event", desc="verifying chains",
                  disable=quiet or None) as bar:  # fmt: skip
            return verify_chains(recorder, progress=bar.update)

    def _read_digest(self, path: Path, public_key_path: Path | None) -> digests.Digest:
        try:
            sealed = digests.Digest.from_dict(json.loads(path.read_text()))
        except OSError as exc:
            raise CommandError(f"cannot read the digest {path}: {exc.strerror}") from None
        except (ValueError, digests.DigestError) as exc:
            raise CommandError(f"{path} is not a ledger digest: {exc}") from None
        try:
            if public_key_path is not None:
                public_key = digests.load_public_key(public_key_path.read_bytes())
            elif keys.configured():
                public_key = keys.public_key()
            else:
                self.stdout.write(
                    "no key given or configured: the digest's signature is NOT checked"
                )
                return sealed
        except OSError as exc:
            raise CommandError(f"cannot read the public key: {exc.strerror}") from None
        except digests.DigestError as exc:
            raise CommandError(str(exc)) from None
        if not digests.signature_valid(sealed, public_key):
            raise CommandError(
                f"the digest {path} is not signed by key {digests.key_id(public_key)} "
                f"(it names {sealed.key_id}), or it was altered: it proves nothing"
            )
        return sealed
