"""Ledger endpoints: the latest signed digest, its public key, inclusion and consistency proofs."""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from bankdemo.api import schema
from bankdemo.api.commands import PatternField
from bankdemo.api.filters import BLANK
from bankdemo.api.pagination import LOG_POSITION
from eventsourcing_app.core.records import Position
from eventsourcing_app.ledger import proofs
from eventsourcing_app.ledger.digests import DigestError
from eventsourcing_app.ledger.tree import LedgerDamaged

# Tree sizes and leaf counts are bigint columns: a larger number names no tree there can be.
MAX_BIGINT = 2**63 - 1
DIGITS = re.compile(r"[0-9]+")
HEX = "lowercase hex of a SHA-256 hash"

NO_DIGEST = "no_digest: no digest has been sealed yet"
UNAVAILABLE = (
    "no_digest (no tree_size given and no digest sealed yet), not_sealed (no event at that "
    "position is sealed yet), not_in_tree (the event is sealed beyond a tree of tree_size "
    "leaves), tree_size_beyond_ledger (the ledger holds fewer leaves)"
)
DAMAGED = (
    "ledger_damaged: a hash the proof needs is missing from the ledger tables, or the stored "
    "digest is malformed"
)


class WholeNumberField(serializers.IntegerField):
    """An integer in ASCII digits up to a bigint; DRF's own takes "5.0", "+5" and " 5" too."""

    def __init__(self, **kwargs) -> None:
        super().__init__(min_value=1, max_value=MAX_BIGINT, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not DIGITS.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class LedgerQuery(serializers.Serializer):
    """Query parameters given once each, never blank (DRF would skip a blank optional one)."""

    def validate(self, attrs: dict) -> dict:
        problems = {}
        for name in self.fields:
            values = self.initial_data.getlist(name)
            if "" in values:
                problems[name] = [BLANK]
            elif len(values) > 1:
                problems[name] = ["Give this parameter once."]
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class InclusionQuery(LedgerQuery):
    """`?position=<T-I>[&tree_size=N]`."""

    position = PatternField(
        LOG_POSITION,
        help_text='the event\'s log position, "<transaction>-<id>" as the API reports it',
        error_messages={"invalid": "Give a log position such as '0-42'."},
    )
    tree_size = WholeNumberField(
        required=False,
        help_text="the size of the tree to prove inclusion in, the tree_size of a digest you "
        "hold (default: the latest digest's)",
    )

    def validate_position(self, value: str) -> Position:
        try:
            return Position.parse(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ConsistencyQuery(LedgerQuery):
    """`?first=N&second=M`, 1 <= N <= M."""

    first = WholeNumberField(help_text="the tree_size of the older digest")
    second = WholeNumberField(help_text="the tree_size of the newer digest")

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        if attrs["first"] > attrs["second"]:
            later = "first must not be greater than second: a tree only grows"
            raise serializers.ValidationError({"first": [later], "second": [later]})
        return attrs


class DigestOut(serializers.Serializer):
    tree_size = serializers.IntegerField(help_text="how many events the tree holds")
    root_hash = serializers.CharField(help_text=f"the tree's root, {HEX}")
    last_position = serializers.CharField(help_text="the log position of the last event sealed")
    algorithm = serializers.CharField(help_text="rfc9162-sha256")
    sealed_at = serializers.CharField(help_text="when it was sealed (ISO 8601), as signed")
    key_id = serializers.CharField(help_text="the id of the key it is signed with")
    signature = serializers.CharField(
        help_text="Ed25519 over the other fields as JSON, keys sorted, no spaces (base64)"
    )


class KeyOut(serializers.Serializer):
    key_id = serializers.CharField(help_text="the first 16 hex digits of SHA-256 of the key")
    algorithm = serializers.CharField(help_text="ed25519")
    public_key = serializers.CharField(help_text="the key's 32 raw bytes in base64")
    public_key_pem = serializers.CharField(help_text="the same key as SubjectPublicKeyInfo PEM")


class InclusionOut(serializers.Serializer):
    leaf_index = serializers.IntegerField(help_text="the event's leaf, counted from 0")
    tree_size = serializers.IntegerField(help_text="the size of the tree the proof is for")
    leaf_hash = serializers.CharField(
        help_text=f"SHA-256(0x00 || event_hash as ASCII) as sealed, {HEX}"
    )
    audit_path = serializers.ListField(
        child=serializers.CharField(), help_text="PATH(leaf_index, D[tree_size]) of RFC 9162"
    )
    position = serializers.CharField(help_text="the event's log position")
    event_id = serializers.IntegerField()
    event_hash = serializers.CharField(
        allow_null=True,
        help_text="the event's hash as the log holds it now (null: the row is gone)",
    )


class ConsistencyOut(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    path = serializers.ListField(
        child=serializers.CharField(), help_text="PROOF(first, D[second]) of RFC 9162"
    )


def query(serializer_class: type[LedgerQuery], request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def latest_digest() -> dict:
    """Return the latest digest; a stored one that no longer reads is damage, not a 500."""
    try:
        return proofs.current_digest()
    except DigestError as exc:
        raise LedgerDamaged(f"the latest digest is malformed: {exc}") from None


class LedgerDigest(APIView):
    @extend_schema(
        responses={200: DigestOut, **schema.errors(403, described={404: NO_DIGEST})},
        summary="The latest signed digest of the ledger, exactly as sealed",
        description="Keep it outside the server: later digests must extend it "
        "(`/api/ledger/consistency/`), and every event it covers is provable against its root "
        "(`/api/ledger/inclusion/`).",
    )
    def get(self, request):
        return Response(DigestOut(latest_digest()).data)


class LedgerKey(APIView):
    @extend_schema(
        responses={
            200: KeyOut,
            **schema.errors(
                403,
                described={
                    503: "the database cannot be reached (retry after `Retry-After` seconds), "
                    "or no_signing_key: the server has no usable signing key configured"
                },
            ),
        },
        summary="The public key digests are signed with",
    )
    def get(self, request):
        try:
            return Response(KeyOut(proofs.public_key_document()).data)
        except DigestError as exc:  # a key configured but unreadable: still none to use
            raise proofs.ProofUnavailable("no_signing_key", str(exc)) from None


class LedgerInclusion(APIView):
    @extend_schema(
        parameters=[InclusionQuery],
        responses={
            200: InclusionOut,
            **schema.errors(400, 403, described={404: UNAVAILABLE, 409: DAMAGED}),
        },
        summary="Proof that an event is a leaf of the tree (RFC 9162 inclusion proof)",
        description="Without `tree_size` the proof is for the latest digest's tree (404 "
        "no_digest before the first); pass the tree_size of the digest you verify against, as "
        "a newer digest may be sealed between your two requests. Verify: leaf_hash is "
        "SHA-256(0x00 || event_hash), and audit_path folds it into the digest's root_hash.",
    )
    def get(self, request):
        values = query(InclusionQuery, request)
        tree_size = values.get("tree_size")
        if tree_size is None:
            tree_size = latest_digest()["tree_size"]
        proof = proofs.inclusion_proof(values["position"], tree_size)
        proof.setdefault("event_hash", None)  # a sealed row since deleted: the proof still holds
        return Response(InclusionOut(proof).data)


class LedgerConsistency(APIView):
    @extend_schema(
        parameters=[ConsistencyQuery],
        responses={
            200: ConsistencyOut,
            **schema.errors(
                400,
                403,
                described={
                    404: "tree_size_beyond_ledger: the ledger holds fewer than `second` leaves",
                    409: DAMAGED,
                },
            ),
        },
        summary="Proof that a later tree extends an earlier one (RFC 9162 consistency proof)",
        description="`first` and `second` are the tree_size of two digests, 1 <= first <= "
        "second (first greater than second is a 400). The path proves the tree of `second` "
        "leaves keeps the first `first` leaves unchanged.",
    )
    def get(self, request):
        values = query(ConsistencyQuery, request)
        return Response(
            ConsistencyOut(proofs.consistency_proof(values["first"], values["second"])).data
        )
