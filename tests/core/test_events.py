"""core.events: announcements delivered after commit, never for a rolled-back change."""

from __future__ import annotations

import pytest
from django.db import transaction

from core import events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def received():
    seen: list[dict] = []

    def subscriber(**payload) -> None:
        seen.append(payload)

    events.subscribe("test.happened", subscriber)
    yield seen
    events.unsubscribe("test.happened", subscriber)


def test_an_event_is_delivered_after_the_transaction_commits(received):
    with transaction.atomic():
        events.publish("test.happened", n=1)
        assert received == []
    assert received == [{"n": 1}]


def test_an_event_of_a_rolled_back_transaction_is_never_delivered(received):
    with pytest.raises(RuntimeError), transaction.atomic():
        events.publish("test.happened", n=1)
        raise RuntimeError
    assert received == []


def test_outside_a_transaction_it_is_delivered_at_once(received):
    events.publish("test.happened", n=2)
    assert received == [{"n": 2}]


def test_a_failing_subscriber_stops_no_other(received, caplog):
    def broken(**payload) -> None:
        raise ValueError("boom")

    events.subscribe("test.happened", broken)
    try:
        events.subscribe("test.happened", broken)  # once per subscriber
        events.publish("test.happened", n=3)
    finally:
        events.unsubscribe("test.happened", broken)
    assert received == [{"n": 3}]
    assert sum("failed" in r.getMessage() for r in caplog.records) == 1
