#!/usr/bin/env bash
# List the services and methods a server offers, through server reflection.
#   docs/recipes/list.sh
set -euo pipefail
. "$(dirname "$0")/common.sh"

"${CURL[@]}" --list-services "$URL"
"${CURL[@]}" --list-methods "$URL"
