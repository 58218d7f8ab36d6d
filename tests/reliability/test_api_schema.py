"""Bad input: schemathesis drives every operation of /api/schema/ as a teller and as an auditor.

Claims, for bodies, headers, query strings and path parameters generated from the schema, both
valid (positive mode) and invalid (negative mode): no answer is a 5xx; every status, content type
and JSON body is one the schema documents; a schema-violating request is refused with a 4xx; a
schema-valid one is refused only for what no schema can say (the accounts' state, their currency's
minor units, credentials); and a refused request appends no event.

The app runs in-process (WSGI, no server). SCHEMA_EXAMPLES sets the examples per operation and
mode (default 20; `make soak` raises it); generation is derandomized, so a run is repeatable.
"""

import copy

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application

from bankdemo import services
from eventsourcing_app.ledger.sealer import seal_now
from eventsourcing_app.wiring import get_event_store
from tests.helpers import on_postgresql
from tests.reliability.schema_run import World, load_schema, operations, run_operations, takes_input

# On PostgreSQL each request commits, as in production (the log shows committed events only);
# SQLite's append-only triggers refuse the flush after a committing test, so there it rolls back.
pytestmark = [pytest.mark.django_db(transaction=on_postgresql()), pytest.mark.soak]

ROLES = ("teller", "auditor")


@pytest.fixture
def world() -> World:
    """A funded EUR account with an overdraft, an empty one, a KWD one, a closed JPY one, and
    a signed digest of the ledger over them (so the ledger's proofs can answer 200)."""
    funded, _ = services.account_open(owner="Ada", currency="EUR", overdraft_limit="10.00")
    services.account_deposit(account_id=funded.id, amount="50.00")
    other, _ = services.account_open(owner="Bob", currency="EUR")
    dinar, _ = services.account_open(owner="Cy", currency="KWD")
    services.account_deposit(account_id=dinar.id, amount="5.125")
    closed, _ = services.account_open(owner="Dee", currency="JPY")
    services.account_close(account_id=closed.id, reason="customer left")
    transfer, _ = services.transfer_request(
        source_id=funded.id, destination_id=other.id, amount="1.00"
    )
    seal_now(get_event_store())
    return World([funded.id, other.id, dinar.id, closed.id], transfer.id)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Each token request checks a password: PBKDF2 would take half a second a case."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_survives_generated_input(world, role, capsys):
    """Every operation, both modes: no 5xx, nothing undocumented, bad input refused."""
    everything = operations(load_schema())
    tally = run_operations(everything, world, role)
    summary = tally.summary(role, len(everything))
    with capsys.disabled():
        print(f"\n{summary}")
    expected = {(operation.label, "positive") for operation in everything} | {
        (operation.label, "negative") for operation in everything if takes_input(operation)
    }
    assert not tally.failures, "\n".join([summary, *tally.details()])
    assert set(tally.cases) == expected, "\n".join([summary, *tally.details()])


# Each mutation makes the schema say something the API does not do; the run must notice.
PROJECTIONS = "GET /api/projections/"
DEPOSIT = "POST /api/accounts/{account_id}/deposit/"


def drop_404_of_an_account(raw: dict) -> None:
    del raw["paths"]["/api/accounts/{account_id}/"]["get"]["responses"]["404"]


def error_bodies_as_xml(raw: dict) -> None:
    response = raw["paths"]["/api/accounts/{account_id}/"]["get"]["responses"]["404"]
    response["content"] = {"application/xml": response["content"]["application/json"]}


def versions_as_text(raw: dict) -> None:
    raw["components"]["schemas"]["AccountOut"]["properties"]["version"] = {"type": "string"}


def a_required_parameter_nobody_reads(raw: dict) -> None:
    required = {"name": "since", "in": "query", "required": True, "schema": {"type": "integer"}}
    raw["paths"]["/api/projections/"]["get"]["parameters"] = [required]


def amounts_of_any_text(raw: dict) -> None:
    del raw["components"]["schemas"]["AmountIn"]["properties"]["amount"]["pattern"]


@pytest.mark.parametrize(
    ("mutation", "label", "kind"),
    [
        (drop_404_of_an_account, "GET /api/accounts/{account_id}/", "Undocumented status code"),
        (error_bodies_as_xml, "GET /api/accounts/{account_id}/", "Undocumented Content-Type"),
        (versions_as_text, "GET /api/accounts/{account_id}/", "Response violates schema"),
        (a_required_parameter_nobody_reads, PROJECTIONS, "Schema-violating request accepted"),
        (amounts_of_any_text, DEPOSIT, "Schema-valid request rejected"),
    ],
)
def test_the_run_notices_a_schema_that_says_otherwise(world, mutation, label, kind):
    """The checks bite: a schema that promises what the API does not do is caught."""
    raw = copy.deepcopy(load_schema().raw_schema)
    mutation(raw)
    mutated = schemathesis.openapi.from_dict(raw)
    mutated.app = get_wsgi_application()
    chosen = [operation for operation in operations(mutated) if operation.label == label]
    tally = run_operations(chosen, world, "teller", examples=10)
    assert kind in tally.kinds(), "\n".join(tally.details())


def test_the_run_notices_a_server_error(world, monkeypatch):
    """A view that crashes is reported as a server error, not passed over."""

    def broken(store):
        raise RuntimeError("a bug")

    monkeypatch.setattr("bankdemo.api.reads.projection_statuses", broken)
    chosen = [
        operation for operation in operations(load_schema()) if operation.label == PROJECTIONS
    ]
    tally = run_operations(chosen, world, "auditor", examples=3)
    assert "Server error" in tally.kinds()
