"""Master URL handling."""

from __future__ import annotations

import pytest

from mesoslite.scheduler.transport import endpoint, error_message, resolve_redirect


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("127.0.0.1:5050", "http://127.0.0.1:5050/api/v1/scheduler"),
        ("http://m1:5050", "http://m1:5050/api/v1/scheduler"),
        ("http://m1:5050/", "http://m1:5050/api/v1/scheduler"),
        ("https://m1/mesos", "https://m1/mesos/api/v1/scheduler"),
        ("http://m1:5050/api/v1/scheduler", "http://m1:5050/api/v1/scheduler"),
    ],
)
def test_endpoint(given: str, expected: str) -> None:
    assert endpoint(given) == expected


def test_endpoint_needs_a_host() -> None:
    with pytest.raises(ValueError, match="no host"):
        endpoint("http://")


def test_redirects_resolve_like_mesos_writes_them() -> None:
    current = "https://m1:5050/api/v1/scheduler"
    assert resolve_redirect(current, "//m2:5050/api/v1/scheduler") == (
        "https://m2:5050/api/v1/scheduler"
    )
    assert resolve_redirect(current, "http://m3:5051") == "http://m3:5051/api/v1/scheduler"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Framework is not subscribed", "Framework is not subscribed"),
        ('{"message": "Offer o1 is gone", "details": []}', "Offer o1 is gone"),
        ("{not json", "{not json"),
        ('{"error": 1}', '{"error": 1}'),
    ],
)
def test_error_message_reads_mesos_text_and_mesoslite_json(body: str, message: str) -> None:
    assert error_message(body) == message
