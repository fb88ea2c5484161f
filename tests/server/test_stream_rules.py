"""Every stream-rule violation ends the stream with its status and ErrorInfo reason."""

from __future__ import annotations

import grpc
import pytest

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request, error_reason, request_stream


def audio(data: bytes) -> pb.ConverseRequest:
    return pb.ConverseRequest(audio=pb.AudioInput(audio=data))


CASES = [
    ("first message not config", [audio(bytes(640))], "FIRST_MESSAGE_NOT_CONFIG"),
    ("second config", [config_request(), config_request()], "CONFIG_ALREADY_RECEIVED"),
    (
        "unsupported sample rate",
        [config_request(input_format=pb.AudioFormat(sample_rate_hz=44100))],
        "AUDIO_FORMAT_UNSUPPORTED",
    ),
    (
        "stereo",
        [config_request(input_format=pb.AudioFormat(channels=2))],
        "AUDIO_FORMAT_UNSUPPORTED",
    ),
    (
        "unknown encoding",
        [config_request(output_format=pb.AudioFormat(encoding=7))],  # type: ignore[arg-type]
        "AUDIO_FORMAT_UNSUPPORTED",
    ),
    ("odd number of bytes", [config_request(), audio(bytes(641))], "AUDIO_CHUNK_INVALID"),
    ("oversized chunk", [config_request(), audio(bytes(65538))], "AUDIO_CHUNK_TOO_LARGE"),
    (
        "bad vad setting",
        [config_request(vad=pb.VadSettings(confidence=3.0))],
        "CONFIG_INVALID",
    ),
    (
        "empty request",
        [config_request(), pb.ConverseRequest()],
        "REQUEST_EMPTY",
    ),
    (
        "client tool with a broken schema",
        [config_request(client_tools=[pb.ToolDefinition(name="x", parameters_json_schema="{")])],
        "CLIENT_TOOL_INVALID",
    ),
]


@pytest.mark.parametrize(("requests", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_violation_is_invalid_argument_with_reason(
    requests: list[pb.ConverseRequest], reason: str
) -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in stub.Converse(request_stream(requests)):
                    pass
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == reason
        assert caught.value.details()
        assert not server.runtime.conversations
