"""The ``sonicwire`` command end to end against the loopback server, and its exit codes."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from sonicwire.client import cli, read_wav
from sonicwire.client.cli import (
    EXIT_NOT_SERVING,
    EXIT_OK,
    EXIT_RESOURCE_EXHAUSTED,
    EXIT_SERVER_ERROR,
    EXIT_UNAUTHENTICATED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    main,
)

from .conftest import write_test_wav
from .fake_server import (
    REPLY_CHUNKS,
    REPLY_TEXT,
    SERVICE,
    FakeVoiceService,
    LoopbackServer,
    reply_chunk,
)
from .test_client_loopback import free_port


def test_talk_streams_a_wav_and_writes_the_reply(
    server: LoopbackServer,
    fake: FakeVoiceService,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wav = write_test_wav(tmp_path / "question.wav", speech_ms=200)
    out = tmp_path / "reply.wav"
    code = main(
        [
            "talk",
            str(wav),
            "--target",
            server.target,
            "--out",
            str(out),
            "--trailing-silence",
            "200",
        ]
    )
    assert code == EXIT_OK
    printed = capsys.readouterr().out
    assert "session fake-1 backend=fake" in printed
    assert "you: 200 ms of speech" in printed
    assert f"assistant: {REPLY_TEXT}" in printed
    assert "turn t1 complete: end_turn" in printed
    assert f"written to {out}" in printed
    assert all(line.startswith("[") and "s] " in line for line in printed.splitlines())
    reply = read_wav(out)
    assert reply.pcm == b"".join(reply_chunk(i) for i in range(REPLY_CHUNKS))
    rec = fake.recorded[0]
    assert rec.audio_bytes == (200 + 200) * 16 * 2  # the file plus the trailing silence
    assert rec.half_closed


def test_talk_json_lines(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.wav"
    code = main(["talk", "--text", "hello", "--target", server.target, "--out", str(out), "--json"])
    assert code == EXIT_OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    types_seen = [r["type"] for r in records]
    assert types_seen[0] == "session_started" and types_seen[-1] == "done"
    assert {"transcript", "audio_output", "turn_complete", "usage"} <= set(types_seen)
    transcript = next(r for r in records if r["type"] == "transcript")
    assert transcript == {**transcript, "role": "USER", "text": "hello", "final": True}
    audio = next(r for r in records if r["type"] == "audio_output")
    assert audio["audio_bytes"] == 640 and "audio" not in audio
    assert records[-1]["reply_path"] == str(out) and records[-1]["reply_ms"] == 60
    assert all(isinstance(r["t"], float | int) for r in records)


def test_talk_no_save(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["talk", "--text", "hi", "--target", server.target, "--no-save"]) == EXIT_OK
    assert not (tmp_path / "reply.wav").exists()


def test_health_exit_codes(server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--target", server.target]) == EXIT_OK
    assert capsys.readouterr().out.strip() == "SERVING"
    server.set_health(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert main(["health", "--target", server.target, "--service", SERVICE, "--json"]) == (
        EXIT_NOT_SERVING
    )
    assert json.loads(capsys.readouterr().out) == {"service": SERVICE, "status": "NOT_SERVING"}
    assert main(["health", "--target", server.target, "--service", "nope"]) == EXIT_SERVER_ERROR
    assert "no health status for service 'nope'" in capsys.readouterr().err


def test_voices_and_tools(server: LoopbackServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["voices", "--target", server.target]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "LANGUAGE", "BACKEND", "DEFAULT"]
    assert lines[1].split() == ["joe", "en-US", "local", "yes"]
    assert main(["tools", "--target", server.target, "--json"]) == EXIT_OK
    tool = json.loads(capsys.readouterr().out)
    assert tool == {
        "name": "get_date_time",
        "description": "Current date and time.",
        "parameters": {"type": "object"},
    }


def test_api_key_from_flag_or_environment(
    server: LoopbackServer,
    fake: FakeVoiceService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.api_key = "s3cret"
    monkeypatch.delenv("SONICWIRE_API_KEY", raising=False)
    assert main(["voices", "--target", server.target]) == EXIT_UNAUTHENTICATED
    assert "pass --api-key or set SONICWIRE_API_KEY" in capsys.readouterr().err
    assert main(["voices", "--target", server.target, "--api-key", "s3cret"]) == EXIT_OK
    monkeypatch.setenv("SONICWIRE_API_KEY", "s3cret")
    assert main(["voices", "--target", server.target]) == EXIT_OK


def test_unavailable_server(capsys: pytest.CaptureFixture[str]) -> None:
    target = f"127.0.0.1:{free_port()}"
    assert main(["health", "--target", target, "--connect-retries", "0"]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err and "with plaintext" in err


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ((grpc.StatusCode.INVALID_ARGUMENT, "VOICE_UNKNOWN", "no voice"), EXIT_SERVER_ERROR),
        (
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "SESSION_LIMIT_REACHED", "full"),
            EXIT_RESOURCE_EXHAUSTED,
        ),
        ((grpc.StatusCode.UNAVAILABLE, "BACKEND_UNAVAILABLE", "down"), EXIT_UNAVAILABLE),
        ((grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "no"), EXIT_UNAUTHENTICATED),
    ],
)
def test_server_errors_map_to_exit_codes(
    server: LoopbackServer,
    fake: FakeVoiceService,
    capsys: pytest.CaptureFixture[str],
    failure: tuple[grpc.StatusCode, str, str],
    expected: int,
) -> None:
    fake.fail_converse = failure
    args = ["talk", "--text", "x", "--target", server.target, "--no-save", "--json"]
    assert main([*args, "--connect-retries", "0"]) == expected
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["type"] == "error"
    assert (record["code"], record["reason"], record["exit_code"]) == (
        failure[0].name,
        failure[1],
        expected,
    )


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert main(["talk", "--target", "127.0.0.1:1"]) == EXIT_USAGE
    assert "talk needs FILE.wav, --text, or both" in capsys.readouterr().err
    assert main(["talk", str(tmp_path / "missing.wav")]) == EXIT_USAGE
    assert "missing.wav" in capsys.readouterr().err
    eight_bit = write_test_wav(tmp_path / "u8.wav", width=1)
    assert main(["talk", str(eight_bit)]) == EXIT_USAGE
    assert "8-bit samples" in capsys.readouterr().err
    cut = tmp_path / "cut.wav"
    cut.write_bytes(write_test_wav(tmp_path / "whole.wav").read_bytes()[:30])
    assert main(["talk", str(cut)]) == EXIT_USAGE
    assert "cut.wav: truncated: the file ends inside its WAV header" in capsys.readouterr().err
    assert main(["voices", "--cert", str(tmp_path / "c.pem")]) == EXIT_USAGE
    assert main(["--help"]) == EXIT_OK
    assert "exit codes" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("command", "program", "extra"),
    [
        ("serve", "sonicwire-server", "server"),
        ("up", "sonicwire-up", "server,gateway"),
        ("gateway", "sonicwire-gateway", "gateway"),
    ],
)
def test_server_commands_need_their_program(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    program: str,
    extra: str,
) -> None:
    monkeypatch.setattr(cli, "_find_program", lambda name: None)  # not installed
    assert main([command, "--port", "0"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"runs {program}, which is not installed" in err
    assert f"pip install sonicwire[{extra}]" in err


def test_server_commands_run_their_own_program(monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(cli, "_find_program", lambda name: f"/opt/bin/{name}")
    monkeypatch.setattr(cli, "_exec", lambda path, argv: executed.append((path, argv)))
    assert main(["serve", "--port", "0", "--help"]) == 0
    assert main(["up"]) == 0
    assert main(["gateway", "--grpc-target", "h:1"]) == 0
    assert executed == [
        ("/opt/bin/sonicwire-server", ["/opt/bin/sonicwire-server", "--port", "0", "--help"]),
        ("/opt/bin/sonicwire-up", ["/opt/bin/sonicwire-up"]),
        ("/opt/bin/sonicwire-gateway", ["/opt/bin/sonicwire-gateway", "--grpc-target", "h:1"]),
    ]


def test_the_installed_programs_are_found() -> None:
    # `make setup` installs the package, so its console scripts sit next to this interpreter.
    for program in ("sonicwire-server", "sonicwire-gateway", "sonicwire-up"):
        path = cli._find_program(program)
        assert path is not None, f"{program} is not installed (re-run make setup)"


CLIENT_PACKAGE = Path(cli.__file__).parent


def test_the_client_package_never_imports_server_or_gateway_code() -> None:
    offenders = []
    for path in sorted(CLIENT_PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value] if node.value.startswith("sonicwire.") else []
            offenders += [
                f"{path.name}: {name}"
                for name in names
                if name.startswith(("sonicwire.server", "sonicwire.gateway"))
            ]
    assert offenders == []


def test_running_the_client_command_loads_no_server_code() -> None:
    code = (
        "import sys\n"
        "from sonicwire.client.cli import main\n"
        "for argv in (['--help'], ['voices', '--help'], ['health', '--target', '127.0.0.1:1',"
        " '--timeout', '0.2']):\n"
        "    main(argv)\n"
        "server = ('sonicwire.server', 'sonicwire.gateway')\n"
        "print([m for m in sys.modules if m.startswith(server)])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_tty(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = write_test_wav(tmp_path / "long.wav", speech_ms=1000)
    tty = _Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    args = ["talk", str(wav), "--target", server.target, "--no-save", "--speed", "0"]
    assert main([*args, "--trailing-silence", "200"]) == EXIT_OK
    screen = tty.getvalue()
    assert "sending [" in screen and "1.2/1.2 s" in screen
    assert "\r\x1b[K" in screen  # the progress line is redrawn in place
    last_line = screen.rsplit("\n", 2)[-2]
    assert "done: reply" in last_line  # and cleared before the summary
