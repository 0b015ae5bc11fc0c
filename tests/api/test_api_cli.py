"""``restyle serve``: flags, environment settings, and clear failures before the port opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from restyle.cli import main
from restyle.settings import Settings


def test_serve_help_lists_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--models", "--workers"):
        assert flag in out


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESTYLE_QUEUE_SIZE", "3")
    monkeypatch.setenv("RESTYLE_API_KEYS", "one, two")
    monkeypatch.setenv("RESTYLE_CORS_ORIGINS", '["https://a.example"]')
    monkeypatch.setenv("RESTYLE_MODELS", str(tmp_path))
    s = Settings()
    assert s.queue_size == 3 and s.key_values() == {"one", "two"}
    assert s.cors_origins == ["https://a.example"] and s.models == tmp_path
    assert s.host == "127.0.0.1" and s.max_upload_bytes == 20_000_000
    assert "two" not in repr(s)  # keys are secrets: never printed
    again = Settings(**{k.removeprefix("RESTYLE_").lower(): v for k, v in s.to_env().items()})
    assert again.model_dump(exclude={"api_keys"}) == s.model_dump(exclude={"api_keys"})
    assert again.key_values() == s.key_values()


def test_invalid_settings_fail_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "invalid settings: port" in capsys.readouterr().err
    assert main(["serve", "--models", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
