"""Reference codecs for the tests: Debian's sox and ffmpeg run as subprocesses, and a minimal
Ogg reader/writer (RFC 3533, RFC 7845) to move raw Opus packets in and out of ffmpeg."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

__all__ = [
    "ffmpeg",
    "ogg_opus_packets",
    "sox",
    "write_ogg_opus",
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required (installed by scripts/setup.sh)"
    return path


def sox(*args: str | Path, stdin: bytes = b"") -> bytes:
    """Run sox with ``args``; returns its stdout."""
    done = subprocess.run(
        [_tool("sox"), *map(str, args)], input=stdin, capture_output=True, check=True
    )
    return done.stdout


def ffmpeg(*args: str | Path, stdin: bytes = b"") -> bytes:
    """Run ffmpeg quietly with ``args``; returns its stdout."""
    done = subprocess.run(
        [_tool("ffmpeg"), "-hide_banner", "-loglevel", "error", "-nostdin", *map(str, args)],
        input=stdin,
        capture_output=True,
        check=True,
    )
    return done.stdout


def _pages(data: bytes) -> list[tuple[int, list[int], bytes]]:
    """(header type, segment lengths, body) of every Ogg page."""
    pages = []
    pos = 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS", f"no Ogg page at {pos}"
        header_type = data[pos + 5]
        count = data[pos + 26]
        lacing = list(data[pos + 27 : pos + 27 + count])
        start = pos + 27 + count
        body = data[start : start + sum(lacing)]
        pages.append((header_type, lacing, body))
        pos = start + sum(lacing)
    return pages


def ogg_opus_packets(data: bytes) -> tuple[int, list[bytes]]:
    """The pre-skip and the audio packets of an Ogg Opus file (header packets dropped)."""
    packets: list[bytes] = []
    current = b""
    for _, lacing, body in _pages(data):
        pos = 0
        for size in lacing:
            current += body[pos : pos + size]
            pos += size
            if size < 255:
                packets.append(current)
                current = b""
    head = packets[0]
    assert head.startswith(b"OpusHead")
    pre_skip = struct.unpack_from("<H", head, 10)[0]
    assert packets[1].startswith(b"OpusTags")
    return pre_skip, packets[2:]


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def _page(header_type: int, granule: int, serial: int, seq: int, packets: list[bytes]) -> bytes:
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = struct.pack(
        "<4sBBqIIIB", b"OggS", 0, header_type, granule, serial, seq, 0, len(lacing)
    )
    page = bytearray(header + lacing + b"".join(packets))
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
    struct.pack_into("<I", page, 22, crc)
    return bytes(page)


def write_ogg_opus(path: Path, packets: list[bytes], sample_rate: int, packet_ms: int = 20) -> None:
    """Wrap raw Opus packets (mono, ``packet_ms`` each) in an Ogg Opus file, one per page."""
    serial = 0x5157
    head = struct.pack("<8sBBHIhB", b"OpusHead", 1, 1, 0, sample_rate, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    pages = [_page(2, 0, serial, 0, [head]), _page(0, 0, serial, 1, [tags])]
    granule = 0
    for i, packet in enumerate(packets):
        granule += 48 * packet_ms  # granule positions count 48 kHz samples
        last = i == len(packets) - 1
        pages.append(_page(4 if last else 0, granule, serial, i + 2, [packet]))
    path.write_bytes(b"".join(pages))


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-noise ratio of ``test`` against ``reference`` (same length), in dB."""
    ref = reference.astype(np.float64)
    noise = ref - test.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / max(np.sum(noise**2), 1e-9)))


def best_lag(reference: np.ndarray, test: np.ndarray, max_lag: int) -> int:
    """The delay of ``test`` against ``reference`` (in samples) maximising their correlation."""
    ref = reference.astype(np.float64)
    tst = test.astype(np.float64)
    best, best_score = 0, -np.inf
    n = min(len(ref), len(tst)) - max_lag
    for lag in range(max_lag + 1):
        score = float(np.dot(ref[:n], tst[lag : lag + n]))
        if score > best_score:
            best, best_score = lag, score
    return best
