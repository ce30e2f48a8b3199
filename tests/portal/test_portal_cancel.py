"""cancel(): a client waiting to retry gives up at once, so that Ctrl-C during apply ends promptly."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import responses

from hbsdeploy.apply.audit import AuditLog
from hbsdeploy.apply.run import Status, apply_plan
from hbsdeploy.load.settings import DEFAULT_SETTINGS, normalize_settings
from hbsdeploy.plan.model import compute_plan
from hbsdeploy.portal import PortalUnavailable
from hbsdeploy.portal.http import HttpPortal
from tests.plan.factories import have, settings, state_of, want
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


def test_after_cancel_a_listing_requests_no_page() -> None:
    """A page of the partners listing asked for after Ctrl-C (the next page, fetched ahead) is refused before it is
    sent: nothing would use its answer, and the listing ends at once."""
    portal = HttpPortal(make_env(BASE))
    portal.cancel()
    with responses.RequestsMock(assert_all_requests_are_fired=True), \
            pytest.raises(PortalUnavailable, match="interrupted; the partners listing was not requested"):
        portal.list_all_service_types()
    assert portal.request_count == 0


def test_the_read_back_of_a_write_under_way_still_runs_after_cancel() -> None:
    """A PUT whose answer was lost meets 412 on its retry; its read-back shows whether the first attempt landed. When
    Ctrl-C comes while that retry is under way, the read-back still runs: it belongs to the write, whose outcome must
    be known."""
    portal = HttpPortal(make_env(BASE, max_retries=1), sleep=lambda _seconds: None)
    path = f"{BASE}/v1/partners/DE%2AA36/service-types/authorization"
    settings = dict(DEFAULT_SETTINGS)

    def interrupted_retry(_request: object) -> tuple[int, dict[str, str], str]:
        portal.cancel()
        return 412, {}, json.dumps({"error": "version_conflict", "message": "stale"})

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.put(path, status=502, json={"error": "bad_gateway", "message": "lost"})
        mock.add_callback(responses.PUT, path, callback=interrupted_retry)
        mock.get(path, json={"partner_id": "DE*A36", "service_type": "authorization", "settings": settings,
                             "version": '"2"'})
        written = portal.update_service_type("DE*A36", "authorization", settings, '"1"')
    assert written.version == '"2"' and portal.request_count == 3


def test_a_write_whose_answer_is_lost_during_cancel_is_still_looked_up(tmp_path: Path) -> None:
    """Ctrl-C (cancel()) while a PUT is under way; its answer is a 500, which may come after the write. apply's look
    at the service type belongs to that write, as the 412 read-back does: it is sent, and shows the write landed,
    instead of being refused as a new read and leaving the outcome unknown."""
    portal = HttpPortal(make_env(BASE, max_retries=1), sleep=lambda _seconds: None)
    path = f"{BASE}/v1/partners/DE%2AA36/service-types/authorization"
    wanted = settings(service_url="https://new.example.com")
    plan = compute_plan("test", [want(service_url="https://new.example.com")], state_of(have(version='"1"')))

    def interrupted_write(_request: object) -> tuple[int, dict[str, str], str]:
        portal.cancel()  # what apply does on Ctrl-C, while this write is under way
        return 500, {}, json.dumps({"error": "internal", "message": "lost after the write"})

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_callback(responses.PUT, path, callback=interrupted_write)
        mock.get(path, json={"partner_id": "DE*A36", "service_type": "authorization",
                             "settings": normalize_settings(wanted), "version": '"2"'})
        result = apply_plan(plan, portal, AuditLog(tmp_path / "audit.jsonl"), parallelism=1, read_back=False)
    (only,) = result.results
    assert only.status is Status.APPLIED, only.message
    assert "reading it back shows the update was made" in (only.message or "")
    assert portal.request_count == 2


def test_after_cancel_a_single_read_still_sends_its_first_attempt() -> None:
    """Only a listing's pages are refused after cancel(): a single read (apply's look at a write whose answer was
    lost, above) sends its first attempt; cancel() stops its retries."""
    portal = HttpPortal(make_env(BASE, max_retries=1), sleep=lambda _seconds: None)
    portal.cancel()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/v1/partners/DE%2AA36/service-types/reservation", status=503,
                 json={"error": "unavailable", "message": "busy"})
        with pytest.raises(PortalUnavailable, match="interrupted while waiting to retry"):
            portal.get_service_type("DE*A36", "reservation")
    assert portal.request_count == 1
