"""The offline verifier of ledger proofs and digests: `python -m eventsourcing_app.ledger -h`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from eventsourcing_app.ledger import offline

PROG = "python -m eventsourcing_app.ledger"

DESCRIPTION = """\
Check the ledger's proofs and signed digests on your own machine, with nothing but the files
the server gave you: no Django, no database, no network.

exit status:
  0  the proof (and, with --public-key, the signature) checks out
  1  it does not: the message says what failed
  2  a file is missing, unreadable, or not what it should be (or the arguments are wrong)
"""

KEY_HELP = (
    "the server's Ed25519 public key: the JSON of GET /api/ledger/key/, PEM, or base64 of the "
    "32 raw bytes; without it the digests' signatures are NOT checked"
)


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser of the verifier."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inclusion = commands.add_parser(
        "verify-inclusion",
        help="prove that an event is in the tree a digest seals",
        description="Check that PROOF (GET /api/ledger/inclusion/) leads from the event's leaf "
        "to the root DIGEST seals, and with --public-key that the server signed DIGEST.",
    )
    inclusion.add_argument("proof", metavar="PROOF.json", help="the inclusion proof")
    inclusion.add_argument("digest", metavar="DIGEST.json", help="the signed digest")
    inclusion.add_argument("--public-key", metavar="KEYFILE", help=KEY_HELP)
    inclusion.add_argument(
        "--event-hash",
        metavar="HEX",
        help="the event's hash as you hold it (64 hex digits); overrides the proof's "
        "event_hash, and the leaf must be SHA-256(0x00 || HEX)",
    )

    consistency = commands.add_parser(
        "verify-consistency",
        help="prove that a newer digest's tree extends an older one's",
        description="Check that PROOF (GET /api/ledger/consistency/) shows the tree NEW seals "
        "is the tree OLD seals with leaves appended, none changed or removed.",
    )
    consistency.add_argument("proof", metavar="PROOF.json", help="the consistency proof")
    consistency.add_argument("old", metavar="OLD.json", help="the older signed digest")
    consistency.add_argument("new", metavar="NEW.json", help="the newer signed digest")
    consistency.add_argument("--public-key", metavar="KEYFILE", help=KEY_HELP)

    digest = commands.add_parser(
        "verify-digest",
        help="check a digest's signature only",
        description="Check that the server's key signed DIGEST and that it was not changed since.",
    )
    digest.add_argument("digest", metavar="DIGEST.json", help="the signed digest")
    digest.add_argument(
        "--public-key",
        metavar="KEYFILE",
        required=True,
        help="the server's Ed25519 public key: the JSON of GET /api/ledger/key/, PEM, or base64",
    )
    return parser


def run(args: argparse.Namespace) -> list[str]:
    """Return the summary of the check `args` ask for, or raise `offline`'s errors."""
    if args.command == "verify-inclusion":
        proof = offline.load_inclusion(args.proof)
        digest = offline.load_digest(args.digest)
        event_hash = (
            None
            if args.event_hash is None
            else offline.parse_event_hash(args.event_hash, "--event-hash")
        )
        key = None if args.public_key is None else offline.load_key(args.public_key)
        return offline.verify_inclusion(proof, digest, event_hash=event_hash, public_key=key)
    if args.command == "verify-consistency":
        proof = offline.load_consistency(args.proof)
        old, new = offline.load_digest(args.old), offline.load_digest(args.new)
        key = None if args.public_key is None else offline.load_key(args.public_key)
        return offline.verify_consistency(proof, old, new, public_key=key)
    digest = offline.load_digest(args.digest)
    return offline.verify_digest(digest, offline.load_key(args.public_key))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the verifier on `argv` (the command line by default); return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        lines = run(args)
    except offline.InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except offline.VerificationFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
