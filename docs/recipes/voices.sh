#!/usr/bin/env bash
# List the voices (a unary call of the Sonicwire API).
#   docs/recipes/voices.sh
set -euo pipefail
. "$(dirname "$0")/common.sh"

"${CURL[@]}" -d '{}' "$URL/sonicwire.v1.VoiceService/ListVoices"
