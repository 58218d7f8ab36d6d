"""Forget a data subject: erase their personal data by destroying their key."""

from django.core.management.base import BaseCommand, CommandError

from eventsourcing_app.privacy.erasure import ErasureRefused, forget_subject

EXIT_CODES = {"unknown_subject": 2}


class Command(BaseCommand):
    help = (
        "Forget the data subject SUBJECT (for the bank, an account id): destroy their data key, "
        "so that their personal fields in the events read as erased for good; append a "
        "SubjectForgotten event (who, when, why); delete their aggregates' snapshots and "
        "re-project their read-model rows. Every hash chain and ledger digest still verifies. "
        "Exits 0 when done or when the subject was forgotten already, 2 when no personal data "
        "of theirs is recorded, 1 when it is refused (nothing changes)."
    )

    def add_arguments(self, parser):
        parser.add_argument("subject", help="the data subject's id (the bank: an account id)")
        parser.add_argument(
            "--reason", required=True, help="why (recorded; at most 500 characters)"
        )
        parser.add_argument("--by", default="", help="who asked (default: the operator's login)")
        parser.add_argument("--database", default="default", help="the Django database alias")

    def handle(self, *args, subject, reason, by, database, **options):
        by = by or _operator()
        try:
            erasure = forget_subject(subject, reason=reason, by=by, using=database)
        except ErasureRefused as refused:
            if refused.code == "already_forgotten":
                self.stdout.write(str(refused))
                return
            raise CommandError(str(refused), returncode=EXIT_CODES.get(refused.code, 1)) from None
        self.stdout.write(
            f"forgot the subject {erasure.subject} on {erasure.forgotten_at.isoformat()} by "
            f"{by}: data key(s) {', '.join(erasure.key_ids)} destroyed; {erasure.events} "
            "event(s) now read their personal fields as erased; "
            f"{erasure.snapshots} snapshot(s) deleted; read models of "
            f"{len(erasure.aggregate_ids)} aggregate(s) re-projected; "
            f"SubjectForgotten recorded as event(s) {', '.join(map(str, erasure.event_ids))}"
        )


def _operator() -> str:
    import getpass

    try:
        return f"{getpass.getuser()} (manage.py)"
    except (KeyError, OSError):
        return "manage.py"
