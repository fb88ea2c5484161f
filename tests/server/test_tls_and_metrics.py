"""TLS, mTLS with a plaintext health port for kubelet probes, and Prometheus metrics."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import audio_requests, config_request, request_stream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("client.example")
    root = tmp_path_factory.mktemp("pki")
    paths = {
        "ca": root / "ca.pem",
        "cert": root / "server.pem",
        "key": root / "server.key",
        "client_cert": root / "client.pem",
        "client_key": root / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(paths["cert"]), append=True)
    server.private_key_pem.write_to_path(str(paths["key"]))
    client.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client.private_key_pem.write_to_path(str(paths["client_key"]))
    return paths


async def test_tls(pki: dict[str, Path]) -> None:
    async with running_server(
        backend=EchoBackend(), tls_cert=str(pki["cert"]), tls_key=str(pki["key"])
    ) as server:
        creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{server.port}", creds) as channel:
            voices = await pb_grpc.VoiceServiceStub(channel).ListVoices(pb.ListVoicesRequest())
            assert voices.voices
        async with grpc.aio.insecure_channel(server.target) as plain:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await pb_grpc.VoiceServiceStub(plain).ListVoices(pb.ListVoicesRequest(), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_with_plaintext_health_port(pki: dict[str, Path]) -> None:
    health_port = free_port()
    async with running_server(
        backend=EchoBackend(),
        tls_cert=str(pki["cert"]),
        tls_key=str(pki["key"]),
        tls_client_ca=str(pki["ca"]),
        health_port=health_port,
    ) as server:
        ca = pki["ca"].read_bytes()
        with_cert = grpc.ssl_channel_credentials(
            ca, pki["client_key"].read_bytes(), pki["client_cert"].read_bytes()
        )
        async with grpc.aio.secure_channel(f"localhost:{server.port}", with_cert) as channel:
            assert (
                await pb_grpc.VoiceServiceStub(channel).ListVoices(pb.ListVoicesRequest())
            ).voices
        without = grpc.ssl_channel_credentials(ca)
        async with grpc.aio.secure_channel(f"localhost:{server.port}", without) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await pb_grpc.VoiceServiceStub(channel).ListVoices(
                    pb.ListVoicesRequest(), timeout=5
                )
        # What the kubelet does: plaintext, no metadata, health only.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{health_port}") as probe:
            health = health_pb2_grpc.HealthStub(probe)
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service="sonicwire.v1.VoiceService")
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await pb_grpc.VoiceServiceStub(probe).ListVoices(pb.ListVoicesRequest())
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_metrics_count_streams_and_frames(speech_16k: bytes) -> None:
    port = free_port()
    async with running_server(backend=EchoBackend(), metrics_port=port) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            audio = speech_16k + bytes(640) * 60
            requests = [config_request(), *audio_requests(audio)]
            responses = [r async for r in stub.Converse(request_stream(requests))]
        assert any(r.HasField("turn_complete") for r in responses)
        url = f"http://127.0.0.1:{port}/metrics"
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode()
        )
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values["sonicwire_frames_in_total"] >= len(audio) // 640
    assert values["sonicwire_frames_out_total"] >= 1
    assert values["sonicwire_streams_total"] >= 1
    assert values["sonicwire_time_to_first_audio_seconds_count"] >= 1
    assert values["sonicwire_active_streams"] == 0


async def test_metrics_count_the_event_loop_tasks_of_live_conversations() -> None:
    """`sonicwire_event_loop_tasks` rises with live conversations (3 driver tasks + the gRPC
    handler each) and falls back when they end: what a soak watches for leaked tasks."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"

    async def tasks_metric() -> float:
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode()
        )
        (line,) = [x for x in text.splitlines() if x.startswith("sonicwire_event_loop_tasks ")]
        return float(line.split(" ")[1])

    async with running_server(backend=EchoBackend(), metrics_port=port) as server:
        idle = await tasks_metric()
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            calls = [stub.Converse() for _ in range(3)]
            for call in calls:
                await call.write(config_request())
                await call.read()  # SessionStarted: the conversation is running
            busy = await tasks_metric()
            for call in calls:
                call.cancel()
        for _ in range(100):
            if not server.runtime.conversations:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        after = await tasks_metric()
    assert busy >= idle + 3 * 4, (idle, busy)  # 3 streams x (3 driver tasks + handler)
    assert after <= idle + 1, (idle, busy, after)  # nothing left behind
