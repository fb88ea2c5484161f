"""`pip install sonicwire` is the light client: importing it loads no server or numeric code."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "numpy",
    "soxr",
    "scipy",
    "webrtcvad",
    "onnxruntime",
    "aws_sdk_bedrock_runtime",
    "awscrt",
    "smithy_core",
    "sonicwire.server",
    "sonicwire.gateway",
)

PROBE = """
import json, sys
import sonicwire.client
import sonicwire.client.cli
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_client_and_cli_loads_no_heavy_or_server_modules() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(result.stdout))
    assert "sonicwire.client" in loaded
    offenders = sorted(
        name for name in loaded if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    )
    assert offenders == []
