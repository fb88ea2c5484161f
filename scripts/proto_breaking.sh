#!/usr/bin/env bash
# buf breaking against a baseline that is NOT the code under test, so the check can fail.
#
#   scripts/proto_breaking.sh              check the working tree's proto/ against the baseline(s)
#   scripts/proto_breaking.sh --baseline   print the baseline commit(s) and why, then exit
#   BREAKING_AGAINST=<buf input> ...       check against an explicit buf input instead
#
# Baselines (every one found is checked; at least one must exist, or the check fails):
#   1. the last release tag (v*), when the repository has one: every change since the release;
#   2. otherwise the parent of the newest commit that changed proto/ (what that change broke);
#   3. on a branch other than main, also the merge base with main (everything the branch changes).
# `buf breaking --against '.git#branch=main'` in a fresh clone of main compares main with itself
# and can never fail; that is why the baseline is computed here.
#
# A shallow clone is deepened from origin first; a ref that still cannot be resolved (shallow
# clone without a reachable origin, missing tag) fails with a message, never a pass.
# The only pass without a comparison is a proto/ created by the root commit and unchanged since,
# and it says so.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"

log() { printf 'proto-breaking: %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

if [[ -n "${BREAKING_AGAINST:-}" ]]; then
  log "against $BREAKING_AGAINST (BREAKING_AGAINST)"
  buf breaking --against "$BREAKING_AGAINST"
  log "no breaking change against $BREAKING_AGAINST"
  exit 0
fi

git rev-parse --verify -q HEAD >/dev/null || fail "no commit in $root: nothing to compare proto/ with"
shallow=0
if [[ $(git rev-parse --is-shallow-repository) == true ]]; then
  # A shallow clone may lack the baseline: try once to fetch the history (needs the remote).
  if git remote get-url origin >/dev/null 2>&1 && git fetch --quiet --unshallow --tags origin 2>/dev/null; then
    log "shallow clone: fetched the full history from origin"
  else
    shallow=1
  fi
fi

baselines=()  # "rev|reason"

tag=$(git describe --tags --abbrev=0 --match 'v*' HEAD 2>/dev/null || true)
if [[ -n $tag ]]; then
  baselines+=("$tag|last release tag $tag")
else
  last=$(git log -1 --format=%H -- proto/)
  [[ -n $last ]] || fail "proto/ is in no commit: commit it first"
  if git rev-parse --verify -q "$last^" >/dev/null; then
    # A commit that only added proto/ has a parent without it: then there is nothing to break.
    if [[ -n $(git ls-tree "$last^" -- proto/) ]]; then
      baselines+=("$last^|parent of ${last:0:12}, the newest commit that changed proto/")
    else
      log "proto/ was created by ${last:0:12}; its parent has no proto/ to break"
    fi
  elif [[ $shallow == 1 ]]; then
    fail "shallow clone: the parent of ${last:0:12} (newest commit that changed proto/) is missing;" \
      "fetch more history (git fetch --unshallow) or set BREAKING_AGAINST"
  else
    log "proto/ was created by the root commit ${last:0:12} and is unchanged since: nothing to compare"
  fi
fi

branch=$(git symbolic-ref -q --short HEAD || true)
if [[ -n $branch && $branch != main ]]; then
  if git rev-parse --verify -q main >/dev/null; then
    base=$(git merge-base HEAD main || true)
    [[ -n $base ]] || fail "branch $branch has no merge base with main (shallow clone?)"
    if [[ -n $(git ls-tree "$base" -- proto/) ]]; then
      baselines+=("$base|merge base of $branch with main")
    fi
  else
    log "branch $branch: no local main to take a merge base with (checked the other baseline only)"
  fi
fi

if [[ ${1:-} == --baseline ]]; then
  for b in "${baselines[@]}"; do printf '%s\t%s\n' "$(git rev-parse --short=12 "${b%%|*}")" "${b#*|}"; done
  exit 0
fi

if [[ ${#baselines[@]} -eq 0 ]]; then
  # Reached only when proto/ was born in the (root or its own) commit and never changed since.
  log "no earlier proto/ exists: nothing can be broken yet"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for b in "${baselines[@]}"; do
  rev=${b%%|*}
  reason=${b#*|}
  sha=$(git rev-parse --verify -q "$rev^{commit}") || fail "cannot resolve $rev ($reason)"
  dir="$tmp/${sha:0:12}"
  mkdir -p "$dir"
  # The baseline's own buf.yaml (module layout) and proto/: a plain directory input for buf.
  git archive "$sha" -- buf.yaml proto | tar -x -C "$dir" \
    || fail "cannot read proto/ at ${sha:0:12} ($reason)"
  log "against ${sha:0:12} ($reason)"
  if ! buf breaking --against "$dir"; then
    log "breaking change(s) against ${sha:0:12} ($reason)"
    status=1
  fi
done
[[ $status == 0 ]] && log "no breaking change"
exit $status
