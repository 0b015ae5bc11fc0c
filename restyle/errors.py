"""Errors a user can cause.

Every front end (CLI, API, video) turns a :class:`UserError` into one clear
line and a proper exit code or HTTP status; anything else is a bug.
"""

from __future__ import annotations

import re


class UserError(Exception):
    """A failure caused by input or configuration, not by a bug.

    ``exit_code`` is what the CLI exits with; ``http_status`` what the API
    answers with.
    """

    exit_code: int = 2
    http_status: int = 400

    def __init__(self, message: str, *, exit_code: int | None = None, http_status: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        if http_status is not None:
            self.http_status = http_status


class InputNotFound(UserError):
    http_status = 404


class BadImage(UserError):
    """The bytes are not a decodable image (or are truncated)."""

    http_status = 415


class ImageTooLarge(UserError):
    """Too many pixels: a decompression bomb or simply beyond the limit."""

    http_status = 413


class UnknownStyle(UserError):
    http_status = 404


class BrokenModel(UserError):
    """A model file that exists but cannot be used (truncated, not ONNX, no restyle metadata).

    400 rather than 500: the request named a style that cannot run, and the
    message says which; the server and its other styles are fine.
    """

    http_status = 400


class MissingWeights(UserError):
    """A pretrained weight file is not installed; the message names the package."""

    exit_code = 3
    http_status = 500


class Cancelled(Exception):
    """A run stopped on its own cancel event, or a pipeline stage after another stage failed: not a user error.

    Raised by the video pipeline (``restyle.video.pipeline``) and the job tasks (``restyle.jobs.tasks``);
    the job worker records the job as ``cancelled``.
    """


# An absolute path: not inside a word, a URL or another path (the lookbehind), two or more segments.
_PATH = re.compile(r"(?<![\w:/.~-])(?:[A-Za-z]:)?(?:/[\w.@~+-]+){2,}/?")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)
_CREDENTIALS = re.compile(r"(//)[^/@\s]+@")
# The service's own routes are public knowledge, not file system paths.
_ROUTE = re.compile(r"/(?:v1|v2)(?:/[\w.{}-]+)+/?")


def scrub(message: str) -> str:
    """Replace absolute paths in a message: a model or temp path tells an attacker too much.

    Every message that leaves the server goes through it: error responses,
    job errors (``GET /v1/jobs/{id}``) and ``/readyz``. URLs are kept whole
    (with any ``user:password@`` removed) and so are the API's own routes
    (``/v1/...``), which a path pattern alone used to mangle into ``https:/<path>``.
    """
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(_CREDENTIALS.sub(r"\1", match.group(0)))
        return f"\x00{len(kept) - 1}\x00"

    text = _ROUTE.sub(keep, _URL.sub(keep, message))
    text = _PATH.sub("<path>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)
