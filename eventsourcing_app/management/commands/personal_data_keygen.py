"""Make a new master key for personal data."""

from pathlib import Path

from eventsourcing_app.management.keyfiles import KeyFileCommand
from eventsourcing_app.privacy import masterkey


class Command(KeyFileCommand):
    help = (
        "Write a new master key for personal data (32 random bytes in base64, readable by its "
        "owner only) to FILE, for PERSONAL_DATA_KEY_FILE. It wraps every data subject's key: "
        "keep it out of the repository and out of the database, and keep a copy, since "
        "without it no personal field can be read. An existing file is never overwritten."
    )
    setting = "PERSONAL_DATA_KEY_FILE"
    what = "a master key"

    def generate(self) -> bytes:
        return masterkey.generate()

    def describe(self, file: Path) -> str:
        key = masterkey.parse(file.read_bytes(), str(file))
        return f"wrote {file} (master key id {masterkey.key_id(key)})"
