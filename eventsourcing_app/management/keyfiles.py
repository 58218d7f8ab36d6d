"""What the commands that make key files share: a file readable by its owner only, written
once and never overwritten."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from eventsourcing_app import conf


class KeyFileCommand(BaseCommand):
    """Write a new key to FILE (default: the `setting`), unless it exists."""

    requires_system_checks: list = []  # the checks would only warn of the key it is making
    setting: str  # the EVENTSOURCING setting that names the file
    what: str  # "a signing key", for the messages

    def generate(self) -> bytes:
        raise NotImplementedError

    def describe(self, file: Path) -> str:
        """What to print once the key is written."""
        return f"wrote {file}"

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            type=Path,
            nargs="?",
            help=f"where to write the key (default: the {self.setting} setting)",
        )
        parser.add_argument(
            "--if-missing", action="store_true", help="exit 0 without a change when FILE exists"
        )

    def handle(self, *args, file=None, if_missing=False, **options):
        if file is None:
            if not conf.get(self.setting):
                raise CommandError(f"name a FILE: no {self.setting} is configured")
            file = Path(conf.get(self.setting))
        if file.exists():
            if if_missing:
                return
            raise CommandError(f"{file} exists: {self.what} is never overwritten")
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise CommandError(f"cannot write {file}: {exc.strerror}") from None
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(self.generate())
        self.stdout.write(self.describe(file))
