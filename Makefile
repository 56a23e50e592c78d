# Frontdesk: `make dev` runs it locally, `make test` runs every test. Both install what they
# need (a Python venv with moto, cfn-lint and aws-sam-translator) on first use.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

VENV       := .venv
PYTHON     ?= python3
MOTO_HOST  := 127.0.0.1
MOTO_PORT  ?= 4599
DEV_ADDR   ?= 127.0.0.1:3000
EVENT      ?= events/webhooks/post_call_transcription.json
# Dummy credentials: moto accepts any; nothing here can reach AWS.
LOCAL_AWS  := AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=eu-west-2 \
              AWS_ENDPOINT_URL=http://$(MOTO_HOST):$(MOTO_PORT)

.PHONY: help dev test test-rust test-template send fmt lint release sizes clean

help:
	@echo "make dev    run Frontdesk locally on http://$(DEV_ADDR) (moto as AWS, demo tenant)"
	@echo "make test   run every test (unit, black-box against moto + wiremock, template)"
	@echo "make send   sign and POST a sample webhook to the local server (EVENT=$(EVENT))"
	@echo "make sizes  release-build every function and print binary and zip sizes"

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

dev: $(VENV)/.installed
	@cargo build --quiet -p frontdesk --features local --bin frontdesk-local
	@mkdir -p .local
	@echo "Starting moto (local AWS) on $(MOTO_HOST):$(MOTO_PORT)..."
	@$(VENV)/bin/moto_server -H $(MOTO_HOST) -p $(MOTO_PORT) > .local/moto.log 2>&1 & moto=$$!; \
	trap 'kill $$moto 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 1 100); do curl -s -o /dev/null http://$(MOTO_HOST):$(MOTO_PORT)/moto-api/ && break; sleep 0.1; done; \
	$(LOCAL_AWS) FRONTDESK_LOCAL_ADDR=$(DEV_ADDR) FRONTDESK_LOG_FORMAT=$${FRONTDESK_LOG_FORMAT:-text} \
	  TWILIO_API_BASE_URL=$${TWILIO_API_BASE_URL:-https://api.twilio.com} \
	  ./target/debug/frontdesk-local serve

send:
	@test -f "$(EVENT)" || { echo "no such file: $(EVENT)"; exit 2; }
	@cargo build --quiet -p frontdesk --features local --bin frontdesk-local
	@sig=$$(./target/debug/frontdesk-local sign "$(EVENT)") && \
	curl -sS -X POST "http://$(DEV_ADDR)/webhooks/elevenlabs/post-call" \
	  -H "Content-Type: application/json" -H "ElevenLabs-Signature: $$sig" \
	  --data-binary @"$(EVENT)" -w '\nHTTP %{http_code}\n'

test: $(VENV)/.installed lint
	@mkdir -p .local
	cargo test --workspace --all-features --no-fail-fast 2>&1 | tee .local/cargo-test.log
	$(VENV)/bin/python tests/template/validate.py template.yaml
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "Total: %d passed, %d failed\n", p + 1, f }' .local/cargo-test.log

test-template: $(VENV)/.installed
	$(VENV)/bin/python tests/template/validate.py template.yaml

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-features --all-targets -- -D warnings

release:
	cargo build --release -p post-call -p retry-worker

# Sizes of the release binaries as Lambda would get them (bootstrap in a zip).
sizes: release
	@for f in post-call retry-worker; do \
	  d=$$(mktemp -d); cp target/release/$$f $$d/bootstrap; (cd $$d && zip -q -9 f.zip bootstrap); \
	  printf "%-14s binary %8d bytes  zipped %8d bytes\n" $$f $$(stat -c %s $$d/bootstrap) $$(stat -c %s $$d/f.zip); \
	  rm -rf $$d; done

clean:
	cargo clean
	rm -rf $(VENV) .local
