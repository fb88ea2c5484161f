"""ListVoices per Nova model and a wrong session voice refused at configuration, over gRPC
(server on loopback, nova-sonic backend, local Bedrock endpoint)."""

from __future__ import annotations

import grpc
import pytest

from sonicwire.server.testing.fake_scenario import Scenario
from sonicwire.v1 import voice_service_pb2 as pb

from .helpers import error_reason
from .test_nova_e2e import RAW_AUDIO, _drain, nova_server


async def test_list_voices_per_model() -> None:
    async with nova_server(Scenario()) as (_fake, _server, stub):
        configured = (await stub.ListVoices(pb.ListVoicesRequest())).voices
        assert len(configured) == 16
        kiara = next(v for v in configured if v.id == "kiara")
        assert list(kiara.language_codes) == ["en-IN", "hi-IN"] and not kiara.polyglot
        assert {v.id for v in configured if v.polyglot} == {"matthew", "tiffany"}
        assert {v.model for v in configured} == {"amazon.nova-2-sonic-v1:0"}
        assert [v.id for v in configured if v.default] == ["matthew"]
        nova1 = (
            await stub.ListVoices(
                pb.ListVoicesRequest(backend="nova-sonic", model="amazon.nova-sonic-v1:0")
            )
        ).voices
        assert len(nova1) == 11 and "greta" in {v.id for v in nova1}
        assert "tina" not in {v.id for v in nova1}


async def test_a_voice_the_model_lacks_is_refused_before_bedrock_is_called() -> None:
    async with nova_server(Scenario()) as (fake, _server, stub):
        config = pb.SessionConfig()
        config.CopyFrom(RAW_AUDIO)
        config.voice = "greta"
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=config))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _drain(call, [])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "VOICE_UNKNOWN"
        assert "tina" in (caught.value.details() or "")
        assert fake.streams == []


async def test_the_python_client_lists_voices_per_model() -> None:
    from sonicwire.client import Client

    async with nova_server(Scenario()) as (_fake, server, _stub):
        async with Client(server.target) as client:
            nova1 = await client.list_voices(model="amazon.nova-sonic-v1:0")
            assert {v.model for v in nova1} == {"amazon.nova-sonic-v1:0"}
            assert "greta" in {v.id for v in nova1}
            configured = await client.list_voices()
            arjun = next(v for v in configured if v.id == "arjun")
            assert arjun.language_codes == ("en-IN", "hi-IN") and not arjun.polyglot
