#!/usr/bin/env bash
# Build deploy/Dockerfile with podman on a machine with no image registry (docs/operations.md §10):
# the base image comes from Debian's own packages (debootstrap trixie, Python 3.13), imported as a
# local image. Storage and scratch live under $IMAGE_WORKDIR (default /tmp/sonicwire-image), never
# in the repository or /var: the layers are large. Needs root (rootful podman, debootstrap).
# Usage: scripts/build_image.sh [TAG]   (default localhost/sonicwire:dev)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-localhost/sonicwire:dev}
W=${IMAGE_WORKDIR:-/tmp/sonicwire-image}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA=/etc/ssl/certs/ca-certificates.crt
mkdir -p "$W"

command -v podman >/dev/null && command -v debootstrap >/dev/null && command -v runc >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman buildah debootstrap runc >/dev/null

# crun cannot raise RLIMIT_NOFILE here and does not support this cgroup layout: runc + explicit limits.
cat >"$W/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
export CONTAINERS_CONF="$W/containers.conf"
pm() { podman --root "$W/storage" --runroot "$W/run" "$@"; }

if ! pm image exists localhost/debian:trixie; then
  rm -rf "$W/rootfs"
  debootstrap --variant=minbase trixie "$W/rootfs" "$MIRROR" >"$W/debootstrap.log"
  tar -C "$W/rootfs" -c . | pm import - localhost/debian:trixie
  rm -rf "$W/rootfs"
fi
if ! pm image exists localhost/python:3-trixie; then
  # No CA mount here: the base installs ca-certificates itself (a bind mount over its bundle
  # makes its post-install fail with "Device or resource busy"); apt fetches over http.
  pm build -t localhost/python:3-trixie -f - "$W" <<'BASE'
FROM localhost/debian:trixie
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 ca-certificates && rm -rf /var/lib/apt/lists/*
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
BASE
fi
start=$(date +%s)
pm build -f deploy/Dockerfile --ignorefile deploy/Dockerfile.dockerignore -v "$CA:$CA:ro" \
  --build-arg PYTHON_IMAGE=localhost/python:3-trixie -t "$TAG" .
echo "built $TAG in $(( $(date +%s) - start )) s; size: $(pm image inspect --format '{{.Size}}' "$TAG") bytes"
