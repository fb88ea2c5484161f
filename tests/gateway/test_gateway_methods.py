"""Issue 14, item 7: the gateway's routes check the method (405 with Allow), and HEAD gets the
headers of GET without a body."""

from __future__ import annotations

import asyncio
import socket

import pytest

from .conftest import GatewayFactory


async def raw_http(port: int, method: str, path: str) -> bytes:
    """Send one HTTP/1.1 request and return everything the gateway answers until it closes."""

    def exchange() -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                "Content-Length: 0\r\n\r\n".encode()
            )
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    return await asyncio.to_thread(exchange)


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "TRACE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/health", "/livez", "/app.js"])
async def test_page_routes_refuse_other_methods(
    make_gateway: GatewayFactory, method: str, path: str
) -> None:
    async with make_gateway() as gw:
        status, headers, body = parse(await raw_http(gw.port, method, path))
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert b"<html" not in body.lower()


@pytest.mark.parametrize("path", ["/ws"])
async def test_websocket_route_accepts_only_get(make_gateway: GatewayFactory, path: str) -> None:
    async with make_gateway() as gw:
        status, headers, _ = parse(await raw_http(gw.port, "POST", path))
        head_status, head_headers, _ = parse(await raw_http(gw.port, "HEAD", path))
    assert (status, headers["allow"]) == (405, "GET")
    assert (head_status, head_headers["allow"]) == (405, "GET")


async def test_head_sends_headers_without_body(make_gateway: GatewayFactory) -> None:
    async with make_gateway() as gw:
        get_status, get_headers, get_body = parse(await raw_http(gw.port, "GET", "/"))
        status, headers, body = parse(await raw_http(gw.port, "HEAD", "/"))
    assert get_status == status == 200
    assert get_body and body == b""
    assert headers["content-length"] == get_headers["content-length"] == str(len(get_body))
    assert headers["content-type"] == get_headers["content-type"]
