"""The soak's account at a small N: nothing accepted is lost or applied twice, poison dies on time.

`make soak N=10000` runs the same thing at depth and prints the table; this keeps the
claim checked on every `make test`.
"""

from __future__ import annotations

import pytest

from inqueue_local.soak import Account, Faults, Settings, Soak

EVENTS = 300


@pytest.fixture(scope="module")
def account() -> Account:
    # GIVEN the template's settings and every fault: flaky and poison processors, hung
    # invocations, senders posting twice, and the queue unreachable for part of the sending
    # WHEN 300 events are driven through ingress, queue and worker until the queue is empty
    return Soak(EVENTS, seed=7, faults=Faults(), settings=Settings.from_template()).run()


def test_the_faults_really_happened(account: Account) -> None:
    # THEN the run exercised what it claims to: rejections, retries, duplicates sent, poison
    assert account.rejected > 0
    assert account.posts > account.events
    assert account.processor_calls > account.accepted
    assert account.poison > 0
    assert account.timeouts > 0


def test_every_accepted_event_succeeded_or_is_dead(account: Account) -> None:
    assert account.lost == 0, account.table()
    assert account.accepted == account.succeeded + account.dead
    assert account.accepted + account.rejected == account.events


def test_a_rejected_event_is_never_processed(account: Account) -> None:
    assert account.processed_after_reject == 0, account.table()


def test_every_poison_event_is_dead_after_max_receive_count_receives(account: Account) -> None:
    assert account.poison_dead_at_max == account.poison, account.table()


def test_no_side_effect_is_applied_twice(account: Account) -> None:
    assert account.duplicated == 0, account.table()
