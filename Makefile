# Sonicwire: the two commands are `make run` and `make test`; both set everything up first.
SHELL := /bin/bash
VENV := .venv/bin
export PATH := $(CURDIR)/$(VENV):$(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup run serve test lint typecheck proto-check gen pytest bench bench-quick bench-echo-field clean image live-test

setup:
	@scripts/setup.sh

## run: the offline assistant (gRPC server + browser gateway), no AWS account needed
run: setup
	$(VENV)/sonicwire-up

serve: setup
	$(VENV)/sonicwire-server

## test: lint, type check (Python, TypeScript, Go), proto lint + generated-code drift (every
## language), then the test suite
test: setup lint typecheck proto-check pytest

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check server clients/python/sonicwire/client gateway_ws tests bench

typecheck:
	$(VENV)/mypy server/sonicwire clients/python/sonicwire/client gateway_ws/sonicwire bench
	tsc -p clients/typescript --noEmit
	tsc -p clients/typescript/examples
	test -z "$$(gofmt -l clients/go)" || { gofmt -l clients/go; echo "gofmt: run gofmt -w clients/go" >&2; exit 1; }
	scripts/go vet sonicwire.dev/go/sonicwire sonicwire.dev/go/sonicwirev1 ./clients/go/examples/talk

# Breaking-change check (FILE rules) against a baseline that is not the code under test: the last
# release tag, else the parent of the newest commit that changed proto/ (plus the merge base with
# main on a branch). scripts/proto_breaking.sh computes it; BREAKING_AGAINST=<buf input> overrides.
proto-check:
	buf lint
	scripts/proto_breaking.sh
	scripts/gen_proto.sh --check

gen:
	scripts/gen_proto.sh

pytest:
	$(VENV)/pytest -q

bench: setup
	$(VENV)/python -m bench.run

bench-quick: setup
	$(VENV)/python -m bench.run --quick

## live-test: a short check against the real Amazon Nova Sonic (speech, tool, barge-in, typed
## turn); runs only with an AWS region and credentials in the environment, else says it skipped.
## Costs a few cents. Never part of `make test`.
live-test: setup
	$(VENV)/python -m sonicwire.server.testing.live_nova

## bench-echo-field: echo and barge-in through a real server at device delays 0-1000 ms x reports
## x clock drift (issue 13); writes bench/results/echo_field.json and its section of FRONTEND.md
bench-echo-field: setup
	$(VENV)/python -m bench.echo_field

clean:
	rm -rf .venv node_modules .mypy_cache .ruff_cache .pytest_cache build ./*__mypyc.*.so server/sonicwire/server/native_manifest.json
	find server -name '*.so' -delete

## image: build deploy/Dockerfile with podman from an offline Debian base (minutes, ~3 GB
## scratch under /tmp/sonicwire-image; root). Not part of `make test`: tests/ops checks the inputs.
image:
	scripts/build_image.sh
