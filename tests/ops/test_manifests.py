"""The container image and Kubernetes manifests in deploy/, checked without docker or a cluster.

Every YAML file parses; the invariants an operator relies on hold: gRPC probes on the served
port and service, a termination grace longer than the drain, selectors that match, Secret and
ConfigMap references that the kustomization provides, settings that the server really reads,
and an image entrypoint whose flags `sonicwire serve` accepts.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from sonicwire.v1 import voice_service_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
VOICE_SERVICE = pb.DESCRIPTOR.services_by_name["VoiceService"].full_name

Manifest = dict[str, Any]


# --- loading ------------------------------------------------------------------------------------


def _yaml_files() -> list[Path]:
    return sorted([*K8S.glob("*.yaml"), *K8S.glob("*.yml")])


@cache
def _documents() -> tuple[tuple[Path, Manifest], ...]:
    docs = []
    for path in _yaml_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return tuple(docs)


def _kustomization() -> Manifest:
    docs = [doc for _, doc in _documents() if doc.get("kind") == "Kustomization"]
    assert len(docs) == 1, "deploy/k8s needs exactly one kustomization.yaml"
    return docs[0]


def _resources() -> list[Manifest]:
    """The objects the kustomization applies (its `resources` files, in order)."""
    out: list[Manifest] = []
    for name in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc is not None:
                out.append(doc)
    return out


def _one(kind: str) -> Manifest:
    found = [doc for doc in _resources() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _container() -> Manifest:
    containers = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: Manifest = containers[0]
    return container


def _env() -> dict[str, str]:
    """Environment of the server container: ConfigMap and Secret data plus `env` entries."""
    env: dict[str, str] = {}
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in _resources()}
    for source in _container().get("envFrom", []):
        if "configMapRef" in source:
            data = by_name[("ConfigMap", source["configMapRef"]["name"])].get("data", {})
        else:
            secret = by_name[("Secret", source["secretRef"]["name"])]
            data = {**secret.get("data", {}), **secret.get("stringData", {})}
        env.update({key: str(value) for key, value in data.items()})
    for item in _container().get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
    return env


@cache
def _serve_help() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sonicwire.server", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


def _long_flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text))


def _dockerfile_instructions() -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, rest = logical.partition(" ")
        yield keyword.upper(), rest.strip()
        logical = ""


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def _entrypoint() -> list[str]:
    runtime = _stages()[-1]
    entrypoints = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1, "the runtime stage needs one ENTRYPOINT"
    value = json.loads(entrypoints[0])  # exec form only: the server must get SIGTERM itself
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


# --- YAML ---------------------------------------------------------------------------------------


def test_every_yaml_file_parses_into_named_objects() -> None:
    files = _yaml_files()
    assert files, "no manifests in deploy/k8s"
    for path, doc in _documents():
        assert isinstance(doc, dict), f"{path.name}: not a mapping"
        assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: apiVersion/kind"
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{path.name}: metadata.name"


def test_kustomization_lists_every_manifest_and_only_existing_files() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in _yaml_files()} - {"kustomization.yaml"}
    assert listed == on_disk
    kinds = {doc["kind"] for doc in _resources()}
    expected = {"Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount"}
    assert expected | {"HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    names = [(d["kind"], d["metadata"]["name"]) for d in _resources()]
    assert len(names) == len(set(names)), "duplicate objects"
    image_names = {image["name"] for image in _kustomization().get("images", [])}
    assert _container()["image"].split(":")[0] in image_names


# --- probes, ports, termination ------------------------------------------------------------------


def test_probes_are_native_grpc_on_the_served_port() -> None:
    container = _container()
    port = int(_env().get("SONICWIRE_PORT", "50051"))
    grpc_ports = [p["containerPort"] for p in container["ports"] if p["name"] == "grpc"]
    assert grpc_ports == [port]
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container[kind]
        assert set(probe) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, kind
        assert probe["grpc"]["port"] == port, kind
    # Readiness asks about the voice service itself (NOT_SERVING as soon as a drain starts);
    # liveness asks about the server as a whole.
    assert container["readinessProbe"]["grpc"]["service"] == VOICE_SERVICE
    assert container["livenessProbe"]["grpc"].get("service", "") == ""


def test_termination_grace_outlasts_prestop_and_drain() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    drain = float(_env()["SONICWIRE_DRAIN_GRACE_SECONDS"])
    pre_stop = 0.0
    command = _container().get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    if command:
        assert command[0] == "sleep", "only a sleep belongs in preStop"
        pre_stop = float(command[1])
    # The drain is: grace for live streams, then the server's own 1 s stop, then exit.
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain + 1


def test_connection_ageing_never_cuts_a_live_conversation() -> None:
    env = _env()
    age = float(env.get("SONICWIRE_MAX_CONNECTION_AGE_SECONDS", "0"))
    if age:
        session = float(env.get("SONICWIRE_MAX_SESSION_SECONDS", "0"))
        grace = float(env.get("SONICWIRE_MAX_CONNECTION_AGE_GRACE_SECONDS", "30"))
        assert session > 0, "with connection ageing, bound the session length"
        assert grace >= session


def test_selectors_match_the_deployment() -> None:
    deployment = _one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    pdb = _one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]
    service = _one("Service")
    assert service["spec"]["selector"] == selector
    # Headless: DNS lists the pods so clients balance streams (not connections) themselves.
    assert service["spec"]["clusterIP"] == "None"
    port_names = {p["name"] for p in _container()["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names
    assert any(p.get("appProtocol") == "grpc" for p in service["spec"]["ports"])
    for constraint in deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", []):
        assert constraint["labelSelector"]["matchLabels"] == selector


def test_hpa_scales_the_deployment_on_cpu() -> None:
    hpa = _one("HorizontalPodAutoscaler")
    deployment = _one("Deployment")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert any(
        m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"]
    )
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # The HPA owns the replica count; a fixed one would be reset on every apply.
    assert "replicas" not in deployment["spec"]
    # Utilization is relative to the request: without one the HPA cannot compute it.
    assert _container()["resources"]["requests"]["cpu"]


# --- configuration -------------------------------------------------------------------------------


def test_env_sources_exist_in_the_kustomization() -> None:
    provided = {(d["kind"], d["metadata"]["name"]) for d in _resources()}
    for gen, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        provided |= {(kind, g["name"]) for g in _kustomization().get(gen, [])}
    pod = _one("Deployment")["spec"]["template"]["spec"]
    refs = []
    for source in _container().get("envFrom", []):
        if "configMapRef" in source:
            refs.append(("ConfigMap", source["configMapRef"]["name"]))
        if "secretRef" in source:
            refs.append(("Secret", source["secretRef"]["name"]))
    for item in _container().get("env", []):
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            refs.append(("Secret", ref["secretKeyRef"]["name"]))
        if "configMapKeyRef" in ref:
            refs.append(("ConfigMap", ref["configMapKeyRef"]["name"]))
    assert ("Secret", "sonicwire-secrets") in refs
    for ref in refs:
        assert ref in provided, f"{ref} is referenced but not in the kustomization"
    assert ("ServiceAccount", pod["serviceAccountName"]) in provided


def test_secret_carries_the_api_keys_but_commits_no_value() -> None:
    secret = _one("Secret")
    data = {**secret.get("data", {}), **secret.get("stringData", {})}
    assert "SONICWIRE_API_KEYS" in data
    assert all(value in ("", None) for value in data.values()), "real secrets in git"


def test_every_sonicwire_variable_is_one_the_server_reads() -> None:
    """A misspelt SONICWIRE_* variable would be silently ignored: each must be documented."""
    known = set(re.findall(r"SONICWIRE_[A-Z0-9_]+", _serve_help()))
    nova_config = ROOT / "server/sonicwire/server/backends/nova_sonic/config.py"
    known |= set(re.findall(r"SONICWIRE_NOVA_[A-Z0-9_]+", nova_config.read_text()))
    used = {key for key in _env() if key.startswith("SONICWIRE_")}
    assert used, "the ConfigMap sets no SONICWIRE_* variable"
    assert used <= known, f"unknown settings: {sorted(used - known)}"
    assert "SONICWIRE_MAX_CONNECTION_AGE_SECONDS" in known


def test_metrics_port_is_exposed_and_annotated() -> None:
    port = int(_env()["SONICWIRE_METRICS_PORT"])
    metrics_ports = [p["containerPort"] for p in _container()["ports"] if p["name"] == "metrics"]
    assert metrics_ports == [port]
    annotations = _one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)


def test_pod_runs_as_the_images_non_root_user() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    users = [rest for keyword, rest in _stages()[-1] if keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER (runAsNonRoot needs a uid)"
    assert pod["securityContext"]["runAsUser"] == int(uid)
    container_security = _container()["securityContext"]
    assert container_security["allowPrivilegeEscalation"] is False
    if container_security.get("readOnlyRootFilesystem"):
        mounts = {m["mountPath"] for m in _container()["volumeMounts"]}
        assert "/tmp" in mounts
        data_home = _env().get("XDG_DATA_HOME")
        assert data_home in mounts, "the order store needs a writable XDG_DATA_HOME"


# --- Dockerfile ----------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_312_slim() -> None:
    args = dict(
        rest.split("=", 1) for keyword, rest in _dockerfile_instructions() if keyword == "ARG"
    )
    stages = _stages()
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    for stage in stages:
        base = stage[0][1].split()[0]
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert re.fullmatch(r"python:3\.12(\.\d+)?-slim(-\w+)?", base), base


def test_dockerfile_installs_the_server_with_the_pinned_constraints() -> None:
    build = " ".join(rest for keyword, rest in _stages()[0] if keyword == "RUN")
    assert re.search(r"pip install -c requirements/constraints\.txt \"?\.\[server,local\]", build)
    runtime_run = " ".join(rest for keyword, rest in _stages()[-1] if keyword == "RUN")
    for package in ("libspeexdsp1", "espeak-ng"):
        assert package in runtime_run.split(), package
    copies = [
        shlex.split(rest) for keyword, rest in _dockerfile_instructions() if keyword == "COPY"
    ]
    for args in copies:
        if any(a.startswith("--from") for a in args):
            continue
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "*", "an allowlist: everything else stays out of the context"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    for args in (shlex.split(rest) for k, rest in _dockerfile_instructions() if k == "COPY"):
        if any(a.startswith("--from") for a in args):
            continue
        for source in args[:-1]:
            assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


def test_expose_matches_the_grpc_port() -> None:
    exposed = {
        int(port.split("/")[0])
        for keyword, rest in _stages()[-1]
        if keyword == "EXPOSE"
        for port in rest.split()
    }
    assert 50051 in exposed
    assert int(_env().get("SONICWIRE_PORT", "50051")) in exposed


def test_entrypoint_is_the_server_program_with_flags_it_accepts() -> None:
    entrypoint = _entrypoint()
    assert entrypoint[:1] == ["sonicwire-server"]
    flags = {arg.split("=")[0] for arg in entrypoint[1:] if arg.startswith("--")}
    assert flags <= _long_flags(_serve_help()), flags - _long_flags(_serve_help())
    host = entrypoint[entrypoint.index("--host") + 1]
    assert host == "0.0.0.0", "a container must listen on all interfaces"


@pytest.mark.parametrize(
    "command",
    [
        [str(Path(sys.executable).with_name("sonicwire-server"))],  # the image's program
        [sys.executable, "-m", "sonicwire.client.cli", "serve"],  # `sonicwire serve` runs it
    ],
    ids=["sonicwire-server", "sonicwire serve"],
)
def test_the_server_programs_have_the_same_parser(command: list[str]) -> None:
    result = subprocess.run(
        [*command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert _long_flags(result.stdout) == _long_flags(_serve_help())


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: p.name)
def test_manifest_has_no_tabs_or_duplicate_keys(path: Path) -> None:
    text = path.read_text()
    assert "\t" not in text

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        keys = [loader.construct_object(key) for key, _ in node.value]  # type: ignore[no-untyped-call]
        duplicates = {k for k in keys if keys.count(k) > 1}
        assert not duplicates, f"{path.name}: duplicate keys {duplicates}"
        return loader.construct_mapping(node)

    UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping
    )
    list(yaml.load_all(text, Loader=UniqueKeyLoader))  # a SafeLoader subclass: safe
