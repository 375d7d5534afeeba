"""The shared HTTP client: retries with backoff that honour Retry-After, clear auth errors, no token in messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kpilot.sources.base import SyncError
from kpilot.sources.saas.http import HttpClient, retry_after
from tests.sources.mock_apis import Answer, MockApi, Request


class Echo(MockApi):
    def authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def unauthorized(self) -> Answer:
        return Answer(401, {"message": "expired"})

    def handle(self, req: Request) -> Answer:
        return Answer(200, {"path": req.path, "query": req.query, "body": req.body})


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("7") == 7.0
    assert retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now) == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_429_and_500_are_retried_honouring_retry_after() -> None:
    waits: list[float] = []
    with Echo() as api:
        api.fail(429, headers={"Retry-After": "3"})
        api.fail(500, times=2)
        client = HttpClient(api.url, headers={"Authorization": "Bearer good-token"}, sleep=waits.append,
                            backoff=0.5, rand=lambda: 1.0, source="crm")
        assert client.post_json("/x", {"a": 1})["body"] == {"a": 1}
        assert client.get_json("/y", {"q": "v"})["query"] == {"q": "v"}
    # Retry-After first, then exponential backoff with full jitter (rand() = 1 gives the bound).
    assert waits == [3.0, 1.0, 2.0]


def test_retries_give_up_with_the_reason() -> None:
    waits: list[float] = []
    with Echo() as api:
        api.fail(503, times=10)
        client = HttpClient(api.url, headers={"Authorization": "Bearer good-token"}, sleep=waits.append,
                            max_retries=2, source="crm")
        with pytest.raises(SyncError, match=r"source 'crm': GET .*/z still failed after 2 retries \(HTTP 503\)"):
            client.get_json("/z")
    assert len(waits) == 2 and all(0 <= w <= 2 for w in waits)


def test_401_fails_at_once_and_never_shows_the_token() -> None:
    waits: list[float] = []
    with Echo() as api:
        client = HttpClient(api.url, headers={"Authorization": "Bearer s3cr3t-value"}, sleep=waits.append,
                            source="crm", secrets=("s3cr3t-value",))
        with pytest.raises(SyncError) as caught:
            client.get_json("/x", {"api_token": "s3cr3t-value"})
    text = str(caught.value)
    assert "the token for source 'crm' was refused (401): it may have expired" in text
    assert "s3cr3t-value" not in text and waits == []


def test_a_slow_answer_is_a_timeout_retried_then_reported() -> None:
    with Echo() as api:
        api.delay = 0.5
        client = HttpClient(api.url, headers={"Authorization": "Bearer good-token"}, timeout=0.1, max_retries=1,
                            sleep=lambda s: None, source="crm")
        with pytest.raises(SyncError, match=r"no answer within 0.1 s"):
            client.get_json("/x")


@pytest.mark.parametrize("body", [[1, 2], "text", 3])
def test_a_json_answer_that_is_not_an_object_is_a_clear_error(body: object) -> None:
    with Echo() as api:
        api.fail(200, body=body)
        client = HttpClient(api.url, headers={"Authorization": "Bearer good-token"}, source="crm", max_retries=0)
        with pytest.raises(SyncError) as caught:
            client.get_json("/deals")
    assert "source 'crm'" in str(caught.value) and "not a JSON object" in str(caught.value)
