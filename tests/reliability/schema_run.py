"""Drive the bank API's operations with schemathesis, in-process; tally what the checks find.

Each case is sent through the WSGI app, checked (no 5xx; status, content type, body and headers
as documented; invalid input refused, valid input refused only for what no schema can say; a
refused command appends no event) and counted; failures are collected, not raised, so one run
reports all of them. Generation is derandomized: a run with the same code repeats itself.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import hypothesis
import schemathesis
from django.contrib.auth.models import Group, User
from django.core.wsgi import get_wsgi_application
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.schemas import OpenApiSchema

from bankdemo.domain import MINOR_UNITS
from bankdemo.models import AccountBalance
from eventsourcing_app.models import Event

EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "20"))
PASSWORD = "schema-run-password"
CHECKS = (
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
)
# Refusals of a schema-valid request that depend on what is stored, not on the request's shape.
STATE_REFUSALS = {
    "insufficient_funds",
    "account_closed",
    "balance_not_zero",
    "currency_mismatch",
    "same_account",
    "idempotency_key_reused",
    "version_mismatch",
    "version_conflict",
}


class RefusedRequestWrote(Failure):
    """A request answered with a 4xx appended events."""

    kind_title = "Refused request appended events"


@dataclass
class World:
    """Accounts and a transfer the generated path parameters and bodies can name."""

    accounts: list[uuid.UUID]
    transfer: uuid.UUID


@dataclass
class Tally:
    """What one run sent, what came back, and each distinct failure with one example."""

    cases: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    failing_cases: Counter = field(default_factory=Counter)
    not_run: list[str] = field(default_factory=list)

    def record(self, case: Case, failures: list[Failure], example: str) -> None:
        for failure in failures:
            key = (failure.kind_title, case.operation.label, failure._unique_key)
            self.failures.setdefault(key, f"{failure}\n{example}")
            self.failing_cases[failure.kind_title] += 1

    def kinds(self) -> set[str]:
        """Return the kinds of failure found ("Server error", "Undocumented status code", ...)."""
        return {kind for kind, _, _ in self.failures}

    def summary(self, role: str, operations: int) -> str:
        """One line: operations, cases per mode, distinct failures per kind."""
        modes = Counter()
        for (_, mode), count in self.cases.items():
            modes[mode] += count
        distinct = Counter(kind for kind, _, _ in self.failures)
        return (
            f"schemathesis as {role}: {operations} operations, {sum(modes.values())} cases "
            f"({modes['positive']} positive, {modes['negative']} negative), "
            f"{len(self.failures)} distinct failures {dict(distinct)}, "
            f"{sum(self.failing_cases.values())} failing checks {dict(self.failing_cases)}"
        )

    def details(self) -> Iterator[str]:
        """The statuses seen per operation, what did not run and why, and each failure."""
        for label, statuses in sorted(self.statuses.items()):
            yield f"  {label}: " + ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
        yield from (f"  not run: {reason}" for reason in self.not_run)
        for (kind, label, _), example in sorted(self.failures.items()):
            yield f"--- {kind}: {label}\n{example}"


def token_for(role: str) -> str:
    """Create a user in the role's group and return its API token."""
    user = User.objects.create_user(role, password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=f"{role}s")[0])
    return Token.objects.create(user=user).key


def load_schema() -> OpenApiSchema:
    """Load the schema the running app serves, to call the same app in-process."""
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


def operations(schema: OpenApiSchema) -> list[schemathesis.APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def decimals(text: object) -> int:
    """Return the decimal places written in `text` (0 when it is no decimal)."""
    try:
        exponent = Decimal(str(text)).as_tuple().exponent
    except InvalidOperation:
        return 0
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def currency_of(case: Case) -> str | None:
    """Return the currency an amount in `case` is counted in, as the server would see it."""
    body = case.body if isinstance(case.body, dict) else {}
    if "currency" in body:
        return body["currency"]
    account_id = case.path_parameters.get("account_id") if case.path_parameters else None
    account_id = account_id or body.get("source_id")
    row = AccountBalance.objects.filter(account_id=str(account_id)).first()
    return row.currency if row else None


def too_precise_for_currency(case: Case) -> bool:
    """Whether the amount has more decimals than its currency's minor units: no schema says."""
    body = case.body if isinstance(case.body, dict) else {}
    amount = body.get("amount", body.get("overdraft_limit"))
    currency = currency_of(case)
    return currency in MINOR_UNITS and decimals(amount) > MINOR_UNITS[currency]


def error_body(response) -> dict:
    """Return the JSON error body of `response`, or {} when it has none."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def refused_for_what_no_schema_says(case: Case, response) -> bool:
    """Whether a schema-valid request was refused for what OpenAPI 3.0 cannot describe.

    That is stored state (funds, a closed account, a version, a reused key), the minor units of
    an account's currency, wrong credentials, `version` with `as_of` (one or the other), and a
    consistency proof asked from a larger tree to a smaller one (`first` > `second`).
    """
    body = error_body(response)
    code, fields = body.get("code"), set(body.get("fields") or ())
    if response.status_code in (409, 412, 422) and code in STATE_REFUSALS:
        return True
    if response.status_code == 422 and code == "invalid_amount":
        return too_precise_for_currency(case)
    if response.status_code != 400 or code != "invalid":
        return False
    if case.operation.path == "/api/auth/token/":
        return fields == {"non_field_errors"}
    if case.operation.path == "/api/ledger/consistency/":
        sizes = case.query or {}
        first, second = sizes.get("first"), sizes.get("second")
        whole = all(isinstance(n, int) and not isinstance(n, bool) for n in (first, second))
        return fields == {"first", "second"} and whole and first > second
    return case.operation.path.endswith("/state/") and fields == {"version", "as_of"}


def schema_valid_request_accepted(ctx, response, case: Case) -> bool | None:
    """schemathesis' positive_data_acceptance, excusing what no schema can say."""
    if refused_for_what_no_schema_says(case, response):
        return None
    return schemathesis.checks.positive_data_acceptance(ctx, response, case)


def with_real_ids(operation, mode: GenerationMode, world: World) -> st.SearchStrategy[Case]:
    """Cases whose path parameters name stored objects, besides the freely generated ones."""
    names = {p.name for p in operation.path_parameters}
    if "account_id" in names:
        values = [("account_id", str(account)) for account in world.accounts]
    elif "transfer_id" in names:
        values = [("transfer_id", str(world.transfer))]
    else:
        return st.nothing()
    return st.one_of(
        [operation.as_strategy(mode, path_parameters={name: value}) for name, value in values]
    )


def pin_body(case: Case, values: dict) -> Case:
    """Put stored ids or real credentials in a generated positive body."""
    if isinstance(case.body, dict):
        case.body = {**case.body, **values}
    return case


def with_real_bodies(operation, mode: GenerationMode, world: World, role: str):
    """Positive bodies naming stored accounts (transfers) or real credentials (tokens)."""
    if mode is not GenerationMode.POSITIVE:
        return st.nothing()
    base = operation.as_strategy(mode)
    if operation.path == "/api/transfers/":
        ids = st.sampled_from([str(account) for account in world.accounts])
        pairs = st.fixed_dictionaries({"source_id": ids, "destination_id": ids})
        return st.tuples(base, pairs).map(lambda drawn: pin_body(*drawn))
    if operation.path == "/api/auth/token/":
        return base.map(lambda case: pin_body(case, {"username": role, "password": PASSWORD}))
    return st.nothing()


def sent_as_generated(case: Case) -> bool:
    """Whether the WSGI transport sends the body schemathesis generated.

    Werkzeug's test client encodes an empty multipart field without the line break that ends
    it; Django then drops the field, so the app answers a request other than the one reported.
    """
    body = case.body if isinstance(case.body, dict) else {}
    return case.media_type != "multipart/form-data" or "" not in body.values()


def cases(operation, mode: GenerationMode, world: World, role: str) -> st.SearchStrategy[Case]:
    return st.one_of(
        operation.as_strategy(mode),
        with_real_ids(operation, mode, world),
        with_real_bodies(operation, mode, world, role),
    ).filter(sent_as_generated)


def failures_of(case: Case, response, headers: dict, wrote: bool) -> list[Failure]:
    """Run the checks on one answer and return what they found."""
    found: list[Failure] = []
    if wrote and response.status_code >= 400:
        found.append(RefusedRequestWrote(operation=case.operation.label, message="events appended"))
    try:
        case.validate_response(
            response, checks=[*CHECKS, schema_valid_request_accepted], headers=headers
        )
    except FailureGroup as group:
        found.extend(group.exceptions)
    except Failure as failure:
        found.append(failure)
    return found


def visit(case: Case, headers: dict, tally: Tally) -> None:
    """Send one case, tally its status and record what the checks found."""
    events = Event.objects.count()
    response = case.call(headers=headers)
    wrote = Event.objects.count() != events
    mode = case.meta.generation.mode.value
    tally.cases[(case.operation.label, mode)] += 1
    tally.statuses[case.operation.label][response.status_code] += 1
    found = failures_of(case, response, headers, wrote)
    if found:
        answer = f"{response.status_code} {response.text[:300]}"
        example = f"{mode}: {case.as_curl_command(headers=headers)}\n-> {answer}"
        tally.record(case, found, example)


def explore(
    strategy: st.SearchStrategy[Case], run: Callable[[Case], None], examples: int = EXAMPLES
) -> None:
    """Feed `examples` derandomized cases from `strategy` to `run`; never shrink or stop."""

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(hypothesis.Phase.explicit, hypothesis.Phase.generate),
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def each(case: Case) -> None:
        run(case)

    each()


def takes_input(operation: schemathesis.APIOperation) -> bool:
    """Whether the operation has parameters or a body that negative mode could get wrong."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def run_operations(
    chosen: list[schemathesis.APIOperation], world: World, role: str, examples: int = EXAMPLES
) -> Tally:
    """Run each operation in both modes as `role`; return the tally."""
    headers = {"Authorization": f"Token {token_for(role)}"}
    tally = Tally()
    for operation in chosen:
        for mode in GenerationMode:
            if mode is GenerationMode.NEGATIVE and not takes_input(operation):
                tally.not_run.append(f"{operation.label} negative: it takes no input to get wrong")
                continue
            strategy = cases(operation, mode, world, role)
            try:
                explore(strategy, lambda case: visit(case, headers, tally), examples)
            except hypothesis.errors.Unsatisfiable:
                tally.not_run.append(f"{operation.label} {mode.value}: the schema admits anything")
    return tally
