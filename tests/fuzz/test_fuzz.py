"""A bounded, seeded run of the fuzz harness (``make fuzz N=100000`` runs it at depth).

Both lanes: ``Ingress.handle``/``StatusApi.handle`` on moto in-process, and raw sockets to
the local runner's transport, gateway and functions on a free loopback port.
"""

from __future__ import annotations

import pytest

from inqueue_local.fuzz import fuzz

REQUESTS = 1200
SEED = 20261201


@pytest.mark.e2e
@pytest.mark.enable_socket
def test_no_adversarial_request_gets_a_5xx_is_dropped_or_is_queued_when_refused() -> None:
    report = fuzz(REQUESTS, SEED)

    table = report.render(classes=False)
    assert report.tally.accepted, table  # the run reached the queue, so the comparison below means something
    assert report.server_errors == 0, table
    assert report.tally.dropped == 0, table
    assert report.rejected_but_queued == 0, table
    assert report.accepted_not_queued == 0, table
    assert report.orphans == 0, table
    assert report.not_strict == [], table
    assert report.tally.signed_but_401 == 0, table
    assert report.tally.malformed_bodies == 0, table
    assert report.valid
    # Every class the harness knows was drawn at least once in the bounded run.
    drawn = {cls.split(":")[0] for cls, _status in report.tally.by_class}
    assert {"json", "form-payload", "form", "metadata", "event-shape", "http", "status", "mutated-signed"} <= drawn
