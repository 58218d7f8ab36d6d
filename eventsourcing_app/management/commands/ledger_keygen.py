"""Make a new Ed25519 signing key for the ledger's digests."""

from pathlib import Path

from eventsourcing_app.ledger import digests
from eventsourcing_app.management.keyfiles import KeyFileCommand


class Command(KeyFileCommand):
    help = (
        "Write a new Ed25519 private key (PKCS#8 PEM, readable by its owner only) to FILE, for "
        "LEDGER_SIGNING_KEY_FILE. Keep it out of the repository and out of the database; an "
        "existing file is never overwritten."
    )
    setting = "LEDGER_SIGNING_KEY_FILE"
    what = "a signing key"

    def generate(self) -> bytes:
        return digests.generate_private_key_pem()

    def describe(self, file: Path) -> str:
        key = digests.load_private_key(file.read_bytes())
        return f"wrote {file} (key id {digests.key_id(key.public_key())})"
