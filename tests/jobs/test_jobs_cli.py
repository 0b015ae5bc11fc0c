"""``restyle worker``: a bad setting is one line and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from restyle.cli import main


def test_worker_help_names_the_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["worker", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--processes" in out and "RESTYLE_BROKER_URL" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["worker", "--broker", "amqp://nope"], "RESTYLE_BROKER_URL must be empty"),
        (["worker", "--processes", "0"], "--processes must be between 1 and 64"),
    ],
)
def test_worker_refuses_bad_settings_in_one_line(argv: list[str], message: str, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RESTYLE_STORAGE_ROOT", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_worker_says_when_redis_is_unreachable(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RESTYLE_STORAGE_ROOT", str(tmp_path))
    assert main(["worker", "--broker", "redis://127.0.0.1:1/0"]) == 1
    err = capsys.readouterr().err
    assert "job queue is unavailable" in err and "Redis at 127.0.0.1:1" in err and "Traceback" not in err
