"""The Kafka relay against a real broker: complete, ordered per key, at least once."""

import datetime as dt
import io
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from django.core.management import call_command
from django.utils import timezone

from bankdemo.consumers import record_statements
from bankdemo.models import StatementNotification
from eventsourcing_app.core.errors import BatchFailed
from eventsourcing_app.core.records import NO_STREAM, NewEvent
from eventsourcing_app.following import checkpoints
from eventsourcing_app.kafka.publisher import EventPublisher
from eventsourcing_app.models import ProjectionCheckpoint
from eventsourcing_app.wiring import get_event_store

pytestmark = pytest.mark.usefixtures("log_db")
ROOT = Path(__file__).resolve().parents[2]


def publisher(broker, topic, **options) -> EventPublisher:
    return EventPublisher(
        get_event_store(),
        {"bootstrap.servers": broker.bootstrap},
        topic,
        delivery_timeout=options.pop("delivery_timeout", 10),
        **options,
    )


def consume_all(broker, topic, expected: int, seconds: float = 30) -> list[dict]:
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "isolation.level": "read_uncommitted",
        }
    )
    consumer.subscribe([topic])
    received, deadline = [], time.monotonic() + seconds
    try:
        while len(received) < expected and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                if not message.error():
                    received.append(json.loads(message.value()) | {"_key": message.key()})
        # a moment more, to catch anything beyond what was expected
        for message in consumer.consume(500, timeout=1.0):
            if not message.error():
                received.append(json.loads(message.value()) | {"_key": message.key()})
    finally:
        consumer.close()
    return received


def append_history(streams: int, events_each: int, event_type="shop.ItemAdded") -> list:
    store = get_event_store()
    stored = []
    for _ in range(streams):
        aggregate = uuid.uuid4()
        stored += store.append(
            aggregate,
            [NewEvent(event_type, {"n": n}) for n in range(events_each)],
            expected_version=NO_STREAM,
            aggregate_type="shop.Cart",
        )
    return stored


def test_a_thousand_events_arrive_complete_and_in_order_per_key(broker, topic):
    stored = append_history(streams=60, events_each=20)
    relay = publisher(broker, topic, batch_size=300)
    assert relay.run_until_caught_up() == 1200
    received = consume_all(broker, topic, expected=1200)
    assert sorted(m["event_id"] for m in received) == sorted(e.id for e in stored)
    per_key = defaultdict(list)
    for message in received:
        assert message["_key"].decode() == message["aggregate_id"]
        per_key[message["aggregate_id"]].append(message["version"])
    assert all(versions == list(range(1, 21)) for versions in per_key.values())
    checkpoint = ProjectionCheckpoint.objects.get(name=f"publish:{topic}")
    assert checkpoint.position == get_event_store().head()


def test_private_events_stay_private(broker, topic):
    append_history(streams=2, events_each=3, event_type="shop.ItemAdded")
    append_history(streams=2, events_each=3, event_type="shop.InternalNote")
    relay = publisher(broker, topic, public_names={"shop.ItemAdded": "shop.item-added"})
    relay.run_until_caught_up()
    received = consume_all(broker, topic, expected=6)
    assert len(received) == 6
    assert {m["event_type"] for m in received} == {"shop.item-added"}


def test_a_broker_that_goes_away_loses_nothing(broker, topic):
    first = append_history(streams=5, events_each=10)
    relay = publisher(broker, topic, delivery_timeout=2)
    relay.run_until_caught_up()
    before_outage = consume_all(broker, topic, expected=50)
    broker.stop()
    during = append_history(streams=5, events_each=10)
    with pytest.raises(BatchFailed, match="unconfirmed"):
        relay.publish_batch()
    checkpoint = ProjectionCheckpoint.objects.get(name=f"publish:{topic}")
    assert checkpoint.position == first[-1].position  # not moved past anything unconfirmed
    assert checkpoint.status == ProjectionCheckpoint.FAILED  # operators see the relay stalled
    assert "unconfirmed" in checkpoint.last_error
    broker.start()  # an empty broker: everything after the checkpoint is sent again
    relay.run_until_caught_up()
    checkpoint.refresh_from_db()
    assert (checkpoint.status, checkpoint.last_error) == (ProjectionCheckpoint.OK, "")
    after_outage = consume_all(broker, topic, expected=50)
    delivered = {m["event_id"] for m in before_outage} | {m["event_id"] for m in after_outage}
    assert delivered == {e.id for e in first + during}


def test_a_killed_publisher_resends_only_the_unconfirmed_tail(broker, topic, tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'relay.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "PYTHONUNBUFFERED": "1",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    fill = (
        "import uuid; from eventsourcing_app.wiring import get_event_store; "
        "from eventsourcing_app.core.records import NewEvent, NO_STREAM; s = get_event_store(); "
        "d = {'amount': '1.00', 'currency': 'EUR', 'transfer_id': None}; "
        "[s.append(uuid.uuid4(), [NewEvent('bank.MoneyDeposited', d, 3) for n in range(50)], "
        "expected_version=NO_STREAM, aggregate_type='bank.Account') for _ in range(40)]"
    )
    subprocess.run([*manage, "shell", "-c", fill], cwd=ROOT, env=env, check=True, timeout=120)
    relay = [*manage, "publish_events", "--topic", topic, "--batch-size", "100"]
    first = subprocess.Popen(relay, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
                             stderr=subprocess.STDOUT)  # fmt: skip
    published = _wait_for(first, "relayed 100 events")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert published
    second = subprocess.Popen(relay, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
                              stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert _wait_for(second, "up to 0-2000 (100 published")
        received = consume_all(broker, topic, expected=2000, seconds=60)
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=30)
    assert second.returncode == 0, output
    ids = [m["event_id"] for m in received]
    assert set(ids) == set(range(1, 2001)), output[-2000:]
    assert len(ids) - len(set(ids)) <= 100  # at most the batch in flight when killed


def test_publish_events_takes_over_a_dead_publishers_lease_after_lease_seconds(
    broker, topic, settings
):
    append_history(streams=2, events_each=3)
    name = f"publish:{topic}"
    checkpoints.ensure([name], "default")
    ProjectionCheckpoint.objects.filter(name=name).update(
        owner="killed-host:4242", heartbeat_at=timezone.now() - dt.timedelta(seconds=5)
    )
    relay = ["publish_events", "--topic", topic, "--bootstrap", broker.bootstrap, "--once"]
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEASE_SECONDS": 30}
    call_command(*relay, stdout=(output := io.StringIO()))
    assert output.getvalue() == "0 events relayed\n"  # the dead relay's lease is still fresh
    settings.EVENTSOURCING = {**settings.EVENTSOURCING, "LEASE_SECONDS": 2}
    call_command(*relay, stdout=(output := io.StringIO()))
    assert output.getvalue() == "6 events relayed\n"  # LEASE_SECONDS, not a fixed 30 s
    assert ProjectionCheckpoint.objects.get(name=name).position == get_event_store().head()


def _wait_for(process, text: str, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return True
        if not line and process.poll() is not None:
            return False
    return False


def test_the_downstream_consumer_records_each_movement_once(broker, topic):
    from bankdemo import services

    account, _ = services.account_open(owner="Ada", currency="EUR")
    services.account_deposit(account_id=account.id, amount="10.00")
    services.account_withdraw(account_id=account.id, amount="4.00")
    relay = publisher(
        broker,
        topic,
        public_names={
            "bank.MoneyDeposited": "bank.money-deposited",
            "bank.MoneyWithdrawn": "bank.money-withdrawn",
        },
    )
    relay.run_until_caught_up()
    envelopes = consume_all(broker, topic, expected=2)
    assert record_statements(envelopes) == 2
    assert record_statements(envelopes) == 0  # delivered again: recorded once
    kinds = sorted(StatementNotification.objects.values_list("kind", "amount"))
    assert kinds == [("deposit", "10.00"), ("withdrawal", "4.00")]


def test_the_relay_publishes_ledger_digests_on_a_topic_of_their_own(broker, topic):
    from eventsourcing_app.ledger import digests, keys
    from eventsourcing_app.ledger.sealer import seal_now

    store = get_event_store()
    store.append(uuid.uuid4(), [NewEvent("ledger.MoneyDeposited", {"amount": "1.00"})],
                 expected_version=NO_STREAM, aggregate_type="ledger.Account")  # fmt: skip
    sealed = [seal_now(store), seal_now(store)]
    digest_topic = f"{topic}-digests"
    relay = publisher(broker, topic, digest_topic=digest_topic)
    relay.run_until_caught_up()
    received = consume_all(broker, digest_topic, expected=2)
    documents = [{k: v for k, v in m.items() if k != "_key"} for m in received]
    assert documents == [d.as_dict() for d in sealed]
    for document in documents:
        assert digests.signature_valid(digests.Digest.from_dict(document), keys.public_key())
    assert relay.publish_digests() == 0  # each digest once: the checkpoint moved


def test_consumers_get_the_owner_and_then_the_erasure_notice(broker, topic):
    """A public AccountOpened carries the owner as given; forgetting the subject publishes a
    notice on each stream that held their data, so consumers delete their copies."""
    from bankdemo import services

    owner = "Wilhelmina Kafka-Reader"
    account, _ = services.account_open(owner=owner, currency="EUR")
    names = {"bank.AccountOpened": "bank.account-opened"}
    relay = publisher(broker, topic, public_names=names)
    relay.run_until_caught_up()
    call_command("forget_subject", str(account.id), "--reason", "customer asked",
                 stdout=io.StringIO())  # fmt: skip
    relay.run_until_caught_up()
    received = consume_all(broker, topic, expected=2)
    opened, notice = sorted(received, key=lambda message: message["event_id"])
    assert opened["event_type"] == "bank.account-opened"
    assert opened["data"]["owner"] == owner
    assert notice["event_type"] == "eventsourcing.SubjectForgotten"
    assert notice["data"]["subject"] == str(account.id)
    assert notice["aggregate_id"] == str(account.id)  # the erased stream: the consumer's key
    assert notice["data"]["key_ids"]
    assert notice["metadata"]["reason"] == "customer asked"
    assert owner not in json.dumps({**notice, "_key": None})
