"""cancel(): a client waiting to retry gives up at once, so that Ctrl-C during apply ends promptly."""

from __future__ import annotations

import threading

import pytest
import responses

from hbsdeploy.portal import PartnerNotFound, PortalUnavailable
from hbsdeploy.portal.http import HttpPortal
from tests.portal.helpers import make_env

BASE = "https://portal.test"


def test_cancel_ends_a_retry_wait_and_sends_nothing_more() -> None:
    portal = HttpPortal(make_env(BASE, max_retries=3))
    failures: list[BaseException] = []
    waiting = threading.Event()
    original_wait = portal._sleep

    def wait(seconds: float) -> None:
        assert seconds == 50  # the Retry-After below: without cancel() this would sleep 50 s
        waiting.set()
        original_wait(seconds)

    portal._sleep = wait

    def list_partner() -> None:
        try:
            portal.list_service_types("DE*A36")
        except PortalUnavailable as exc:
            failures.append(exc)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/v1/partners/DE%2AA36/service-types", status=503, headers={"Retry-After": "50"})
        worker = threading.Thread(target=list_partner)
        worker.start()
        assert waiting.wait(10), "the client never started waiting to retry"
        portal.cancel()
        worker.join(10)
        assert not worker.is_alive(), "cancel() did not end the retry wait"
        assert len(mock.calls) == 1  # no second attempt after cancel
    assert len(failures) == 1
    assert "interrupted while waiting to retry" in str(failures[0])


def test_a_first_attempt_after_cancel_still_runs() -> None:
    """The read-back of a write that was under way when Ctrl-C came must still happen: cancel() stops retries only."""
    portal = HttpPortal(make_env(BASE))
    portal.cancel()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/v1/partners/DE%2AA36/service-types", status=404,
                 json={"error": "not_found", "message": "unknown partner"})
        with pytest.raises(PartnerNotFound):
            portal.list_service_types("DE*A36")
