"""Gateway flags and their ``SONICWIRE_GATEWAY_*`` variables: a bad number is a usage error
(exit 2), never a traceback, and no limit, duration or port takes a negative value.

Before: ``SONICWIRE_GATEWAY_PORT=abc`` ended the gateway with a ValueError traceback while its
parser was being built; ``--max-connections -4`` was accepted silently (review, 2026-12-07).
"""

from __future__ import annotations

import argparse

import pytest

from sonicwire.gateway.config import add_gateway_arguments


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sonicwire-gateway")
    add_gateway_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--max-connections", "-4"], ("--max-connections", "0 or more")),
        (["--send-timeout-seconds", "nan"], ("--send-timeout-seconds", "finite")),
        (["--port", "70000"], ("--port", "at most 65535")),
        (["--max-message-bytes", "64k"], ("--max-message-bytes", "whole number")),
    ],
)
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
    argv: list[str], words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        _parse(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert all(word in err for word in words), err


def test_a_bad_environment_value_is_a_usage_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SONICWIRE_GATEWAY_PORT", "abc")
    with pytest.raises(SystemExit) as exit_:
        _parse([])
    assert exit_.value.code == 2
    assert "SONICWIRE_GATEWAY_PORT: expected a whole number, got 'abc'" in capsys.readouterr().err


def test_good_values_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONICWIRE_GATEWAY_MAX_CONNECTIONS", "7")
    args = _parse(["--port", "0", "--send-timeout-seconds", "2.5"])
    assert (args.gateway_max_connections, args.gateway_port) == (7, 0)
    assert args.gateway_send_timeout_s == 2.5
