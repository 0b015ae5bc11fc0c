"""Messages that leave the service name no server path, and keep URLs and the API's own routes readable."""

from __future__ import annotations

import pytest

from restyle.errors import scrub


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("cannot open /srv/restyle/jobs/queue.sqlite3: locked", "cannot open <path>: locked"),
        ('model "/home/u/models/m.onnx" is broken', 'model "<path>" is broken'),
        ("file C:/Users/x/model.onnx", "file <path>"),
        ("see https://example.com/docs/api/errors for help", "see https://example.com/docs/api/errors for help"),
        ("unknown style 'x'; see GET /v1/styles", "unknown style 'x'; see GET /v1/styles"),
        ("poll GET /v1/jobs/abc123/result", "poll GET /v1/jobs/abc123/result"),
        ("Redis at redis://user:secret@cache:6379/0", "Redis at redis://cache:6379/0"),
        ("a/b/c is relative", "a/b/c is relative"),
    ],
)
def test_scrub_hides_paths_and_keeps_urls_and_routes(message: str, expected: str) -> None:
    assert scrub(message) == expected
