"""bench.gateway_ab: the interleaved CPU comparison of the WebSocket path (shape, not speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.gateway_ab import _medians, _summary, main

pytestmark = pytest.mark.skipif(
    not Path("/usr/share/sounds/alsa/Front_Center.wav").exists(),
    reason="needs the alsa-utils voice samples (installed by scripts/setup.sh)",
)


def _try(variant: str, total: float, gateway: float | None = None) -> dict[str, object]:
    server = None if gateway is None else total - gateway
    return {
        "variant": variant,
        "n": 10,
        "cpu_ms_per_stream_s": total,
        "gateway_ms": gateway,
        "server_ms": server,
    }


def test_medians_and_ratio_to_pipecat() -> None:
    tries = [_try("default", 20.0, 8.0), _try("default", 24.0, 9.0), _try("default", 30.0, 7.0)]
    tries += [_try("pipecat", 40.0), _try("pipecat", 48.0)]
    medians = _medians(tries)
    assert medians["10"]["default"] == {
        "cpu_ms_per_stream_s": 24.0,
        "gateway_ms": 8.0,
        "server_ms": 15.0,
    }
    assert medians["10"]["pipecat"]["cpu_ms_per_stream_s"] == 44.0
    lines = _summary(medians)
    assert any("default" in line and "0.55x" in line for line in lines), lines


def test_before_needs_a_base_tree(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--variants", "before"])
    assert "needs --base" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--variants", "up-before,up"])  # the base tree's one process
    assert "'up-before' variant needs --base" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--variants", "fastest"])
    assert "unknown variant" in capsys.readouterr().err


@pytest.mark.timeout(180)
def test_gateway_variants_measure_both_processes(tmp_path: Path) -> None:
    out = tmp_path / "ab.json"
    flags = ["--n", "2", "--rounds", "1", "--duration", "2", "--priority", "nice"]
    code = main([*flags, "--variants", "default,same-work", "--out", str(out)])
    assert code == 0
    tries = json.loads(out.read_text())["tries"]
    assert [t["variant"] for t in tries] == ["default", "same-work"]
    for t in tries:
        assert t["error"] is None, t["error"]
        assert t["gateway_ms"] > 0 and t["server_ms"] > 0
        assert t["cpu_ms_per_stream_s"] == pytest.approx(t["gateway_ms"] + t["server_ms"])
        assert t["replies"] > 0


@pytest.mark.timeout(120)
def test_up_variant_is_one_probed_process(tmp_path: Path) -> None:
    """``up``: server and gateway in one process (``sonicwire up``), its latency probed at the
    server's front end like the gateway's server, its CPU that one process's, not split."""
    out = tmp_path / "ab.json"
    flags = ["--n", "2", "--rounds", "1", "--duration", "2", "--priority", "nice"]
    # `up` is what `sonicwire up` ships (in-process channel), `up-grpc` its loopback-gRPC shape.
    assert main([*flags, "--variants", "up,up-grpc", "--out", str(out)]) == 0
    tries = json.loads(out.read_text())["tries"]
    assert [t["variant"] for t in tries] == ["up", "up-grpc"]
    for t in tries:
        assert t["error"] is None, t["error"]
        assert t["gateway_ms"] is None and t["server_ms"] is None
        assert t["cpu_ms_per_stream_s"] > 0
        assert t["p99_ms"] is not None and t["p99_ms"] > 0
        assert t["replies"] > 0
        assert "p99 added latency not measured (no probe data)" not in t["fail_reasons"]


def test_only_up_grpc_puts_the_gateway_on_loopback_grpc() -> None:
    from bench.gateway_ab import VARIANTS, step_config
    from bench.steps import StepConfig

    start = StepConfig(8.0, 2.0, 1.0, 0.5, up_transport="grpc")  # nothing carries over
    transports = {name: step_config(name, start).up_transport for name in VARIANTS}
    assert transports.pop("up-grpc") == "grpc"
    assert set(transports.values()) == {"inproc"}
