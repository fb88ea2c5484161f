"""Server flags and their ``SONICWIRE_*`` variables: a bad number is a usage error that names
the flag (exit 2), never a traceback, and no limit, duration or port takes a negative value.

Before: ``SONICWIRE_MAX_STREAMS=abc`` ended ``sonicwire serve`` with a ValueError traceback
while the parser was being built, and ``--max-streams -5`` (or any limit below 0) was
accepted silently (red-team and review notes, 2026-12-07).
"""

from __future__ import annotations

import pytest

from sonicwire.server.config import ServerConfig, parse_server_args


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--max-streams", "-5"], ("--max-streams", "0 or more")),
        (["--max-side-streams", "-1"], ("--max-side-streams", "0 or more")),
        (["--audio-rate", "-2"], ("--audio-rate", "0 or more")),
        (["--idle-timeout-seconds", "nan"], ("--idle-timeout-seconds", "finite")),
        (["--drain-grace-seconds", "inf"], ("--drain-grace-seconds", "finite")),
        (["--port", "70000"], ("--port", "0 to 65535")),
        (["--metrics-port", "-1"], ("--metrics-port", "0 or more")),
        (["--max-message-bytes", "1k"], ("--max-message-bytes", "whole number")),
    ],
)
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
    argv: list[str], words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_server_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert all(word in err for word in words), err


@pytest.mark.parametrize(
    ("variable", "value", "flag"),
    [
        ("SONICWIRE_MAX_STREAMS", "abc", "--max-streams"),
        ("SONICWIRE_IDLE_TIMEOUT_SECONDS", "-1", "--idle-timeout-seconds"),
        ("SONICWIRE_AUDIO_BURST", "lots", "--audio-burst"),
        ("SONICWIRE_PORT", "http", "--port"),
    ],
)
def test_a_bad_environment_value_is_a_usage_error_too(
    variable: str,
    value: str,
    flag: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exit_:
        parse_server_args([])
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err


def test_good_values_from_flags_and_the_environment_are_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SONICWIRE_MAX_STREAMS", "7")
    monkeypatch.setenv("SONICWIRE_AUDIO_RATE", "12.5")
    config = parse_server_args(["--idle-timeout-seconds", "0", "--port", "0"])
    assert (config.max_streams, config.audio_rate_per_s) == (7, 12.5)
    assert (config.idle_timeout_s, config.port) == (0.0, 0)
    assert isinstance(config.max_streams, int) and isinstance(config.audio_rate_per_s, float)
    monkeypatch.delenv("SONICWIRE_MAX_STREAMS")
    monkeypatch.delenv("SONICWIRE_AUDIO_RATE")
    defaults, expected = parse_server_args([]), ServerConfig()
    assert defaults.max_streams == expected.max_streams and defaults.port == expected.port
    assert isinstance(defaults.drain_grace_s, float) and defaults.drain_grace_s == 10.0
