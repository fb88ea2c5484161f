#!/usr/bin/env bash
# grpc.health.v1 check: prints {"status": "SERVING"} when ready (no API key needed).
#   docs/recipes/health.sh                           # the whole server
#   docs/recipes/health.sh sonicwire.v1.VoiceService  # one service
set -euo pipefail
. "$(dirname "$0")/common.sh"

"${CURL[@]}" -d "{\"service\": \"${1:-}\"}" "$URL/grpc.health.v1.Health/Check"
