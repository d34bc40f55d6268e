"""The write budget is a sliding window shared through the database: no 60 s span ever holds more than the limit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.github.budget import BudgetSpent, reserve_writes
from integrations.models import GitHubWrite

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(github_settings, settings):
    settings.GITHUB_WRITES_PER_MINUTE = 3
    settings.GITHUB_WRITES_PER_HOUR = 5


def writes_ago(*seconds: float) -> None:
    now = timezone.now()
    GitHubWrite.objects.bulk_create(GitHubWrite(at=now - timedelta(seconds=s)) for s in seconds)


def test_a_full_minute_waits_until_its_oldest_write_leaves_the_window(limits):
    writes_ago(50, 30, 10)
    with pytest.raises(BudgetSpent) as spent:
        reserve_writes()
    assert 9 <= spent.value.retry_after_s <= 13  # 10 s, plus up to 2 s of jitter
    assert GitHubWrite.objects.count() == 3


def test_writes_older_than_a_minute_leave_room(limits):
    writes_ago(70, 65, 61)
    reserve_writes()
    assert GitHubWrite.objects.count() == 4


def test_the_hour_is_a_window_too_and_rows_older_than_an_hour_go(limits):
    writes_ago(3700, 3000, 2000, 1000, 500, 100)
    with pytest.raises(BudgetSpent, match="per hour"):
        reserve_writes()
    writes_ago()
    GitHubWrite.objects.filter(at__lt=timezone.now() - timedelta(seconds=2500)).update(
        at=timezone.now() - timedelta(hours=2)
    )
    reserve_writes()
    assert not GitHubWrite.objects.filter(at__lt=timezone.now() - timedelta(hours=1)).exists()
