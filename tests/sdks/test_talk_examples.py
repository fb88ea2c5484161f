"""The TypeScript and Go `talk` examples against real servers on loopback.

Each example is run as a user would run it (`node clients/typescript/examples/talk.mjs`, the Go
example built by `scripts/go`) with `--json`, and its records and reply file are checked:
spoken questions answered by the offline local engine (`sonicwire serve`, API key required),
one of them through the example's client tool, and server errors surfaced as typed errors with
their ErrorInfo reason.
"""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path

import pytest

from .conftest import API_KEY, GO, ROOT, TS_TALK, Pki, Server, run_talk

pytestmark = pytest.mark.slow

LANGUAGES = ["typescript", "go"]


@pytest.fixture(scope="package")
def go_talk(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Go example, built once with `scripts/go build` (Debian's Go, GOPATH mode, offline)."""
    binary = tmp_path_factory.mktemp("go-bin") / "talk"
    build = subprocess.run(
        [str(GO), "build", "-o", str(binary), "./clients/go/examples/talk"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, f"go build failed:\n{build.stderr}"
    return [str(binary)]


@pytest.fixture(params=LANGUAGES)
def talk_command(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "typescript":
        return ["node", str(TS_TALK)]
    command: list[str] = request.getfixturevalue("go_talk")
    return command


def _wav(path: Path) -> tuple[int, int]:
    """(frames, rate) of a mono 16-bit WAV file."""
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getnframes(), w.getframerate()


def _clock(outcome: dict[str, object]) -> str:
    """The get_date_time result's time as the engine says it: "14:05" -> "2:05"."""
    hour, minute = json.loads(str(outcome["resultJson"]))["time"].split(":")
    return f"{int(hour) % 12 or 12}:{minute}"


def _weekday(outcome: dict[str, object]) -> str:
    """The get_date_time result's weekday ("Saturday")."""
    return str(json.loads(str(outcome["resultJson"]))["weekday"])


def test_spoken_question_is_answered_by_the_local_engine(
    talk_command: list[str], local_server: Server, question_wav: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reply.wav"
    run = run_talk(
        talk_command, str(question_wav),
        "--target", local_server.target, "--api-key", API_KEY, "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    done = run.last("done")
    started = run.of("sessionStarted")
    assert len(started) == 1 and run.records[0]["type"] == "sessionStarted"
    assert started[0]["backend"] == "local"
    # What the engine heard and what it answered, as final transcripts.
    assert done["user_text"] == "what time is it"
    assert [c["name"] for c in run.of("toolCall")] == ["get_date_time"]
    said = str(done["assistant_text"])
    assert _clock(run.last("toolCallResult")) in said, said
    # The whole question was streamed (plus 1 s of trailing silence) ...
    frames, rate = _wav(question_wav)
    question_ms = frames * 1000 // rate
    assert abs(int(str(done["sent_ms"])) - (question_ms + 1000)) <= 20
    # ... and the reply file holds every audio byte received, as the server counted it.
    turns = run.of("turnComplete")
    assert turns and turns[-1]["stopReason"] == "STOP_REASON_END_TURN"
    server_ms = sum(int(str(t.get("audioMs", 0))) for t in turns)
    received = sum(int(str(a["audio"])) for a in run.of("audio"))
    frames, rate = _wav(out)
    reply_ms = frames * 1000 // rate
    assert frames * 2 == received and rate == done["reply_sample_rate_hz"]
    assert reply_ms == done["reply_ms"]
    assert reply_ms > 500 and abs(reply_ms - server_ms) <= 5, (reply_ms, server_ms)


def test_client_tool_round_trip(
    talk_command: list[str], local_server: Server, weather_wav: Path
) -> None:
    run = run_talk(
        talk_command, str(weather_wav), "--demo-tool", "--no-save",
        "--target", local_server.target, "--api-key", API_KEY,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "get_weather" in run.last("sessionStarted")["tools"]  # type: ignore[operator]
    done = run.last("done")
    assert done["user_text"] == "what's the weather in lisbon"
    # The engine called the example's client tool; the handler ran in the client process ...
    [call] = run.of("toolCall")
    assert call["name"] == "get_weather" and call["executor"] == "TOOL_EXECUTOR_CLIENT"
    assert json.loads(str(call["argumentsJson"])) == {"city": "Lisbon"}
    [outcome] = run.of("toolCallResult")
    assert outcome["id"] == call["id"] and outcome["status"] == "TOOL_STATUS_OK"
    language = "node" if "node" in talk_command else "go"
    expected = {"city": "Lisbon", "forecast": "sunny", "answered_by": language}
    assert json.loads(str(outcome["resultJson"])) == expected
    # ... and its answer came back spoken with the tool's answer template.
    assert done["assistant_text"] == "In Lisbon it is sunny.", done
    assert int(str(done["reply_ms"])) > 500


def test_invalid_argument_reason_is_surfaced(talk_command: list[str], local_server: Server) -> None:
    run = run_talk(
        talk_command, "--text", "hello", "--voice", "no-such-voice",
        "--target", local_server.target, "--api-key", API_KEY,
    )  # fmt: skip
    error = run.last("error")
    assert (error["code"], error["reason"]) == ("INVALID_ARGUMENT", "VOICE_UNKNOWN"), error
    assert "no-such-voice" in str(error["message"])
    assert run.returncode == error["exit_code"] == 1


def test_wrong_api_key_is_unauthenticated(talk_command: list[str], local_server: Server) -> None:
    run = run_talk(
        talk_command, "--text", "hello", "--target", local_server.target, "--api-key", "wrong"
    )
    error = run.last("error")
    assert (error["code"], error["reason"]) == ("UNAUTHENTICATED", "API_KEY_INVALID"), error
    assert run.returncode == error["exit_code"] == 4


def test_typed_text_turn_and_unreachable_server(
    talk_command: list[str], local_server: Server
) -> None:
    run = run_talk(
        talk_command, "--text", "what is the date", "--no-save",
        "--target", local_server.target, "--api-key", API_KEY,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert _weekday(run.last("toolCallResult")) in str(run.last("done")["assistant_text"])
    # A port nobody listens on: UNAVAILABLE after the connect retries, exit code 3.
    refused = run_talk(
        talk_command, "--text", "hi", "--target", "127.0.0.1:1", "--connect-retries", "1"
    )
    error = refused.last("error")
    assert error["code"] == "UNAVAILABLE" and refused.returncode == 3, error


def test_documented_go_run_command(local_server: Server) -> None:
    """`scripts/go run ./clients/go/examples/talk ...` (the command in docs/client.md) works."""
    run = run_talk(
        [str(GO), "run", "./clients/go/examples/talk"], "-text", "what is the date", "-no-save",
        "-target", local_server.target, "-api-key", API_KEY,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert _weekday(run.last("toolCallResult")) in str(run.last("done")["assistant_text"])


def test_mutual_tls_with_an_api_key(talk_command: list[str], tls_server: Server, pki: Pki) -> None:
    common = ["--text", "what is the date", "--no-save", "--api-key", API_KEY,
              "--target", tls_server.target, "--server-name", "localhost"]  # fmt: skip
    run = run_talk(
        talk_command, *common,
        "--ca", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert _weekday(run.last("toolCallResult")) in str(run.last("done")["assistant_text"])
    # Without the test CA the server's certificate is not trusted: no connection at all.
    untrusted = run_talk(talk_command, *common, "--connect-retries", "0")
    assert untrusted.last("error")["code"] == "UNAVAILABLE" and untrusted.returncode == 3
