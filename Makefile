# Frontdesk: `make dev` runs it locally, `make test` runs every test. Both install what they
# need (a Python venv with moto, cfn-lint and aws-sam-translator) on first use.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

VENV       := .venv
LAMBDA_VENV := .venv-lambda
PYTHON     ?= python3
MOTO_HOST  := 127.0.0.1
MOTO_PORT  ?= 4599
DEV_ADDR   ?= 127.0.0.1:3000
EVENT      ?= events/webhooks/post_call_transcription.json
# The business make dev serves: a folder (prompts/acme) or a name under prompts/ (acme).
TENANT     ?= prompts/demo
TENANT_DIR := $(if $(findstring /,$(TENANT)),$(TENANT),prompts/$(TENANT))
# Local only: start the server's clock at this RFC 3339 time (a DST week, a support case).
FRONTDESK_NOW ?=
# One build for the tests and the local server: the same packages, features and targets, so
# whichever runs first builds for both.
BUILD      := cargo build --workspace --all-features --lib --bins --tests
# The console's browser test drives Debian's Chromium (Playwright downloads no browser here).
CHROMIUM   ?= /usr/bin/chromium
SUDO       := $(if $(filter 0,$(shell id -u)),,sudo)
# Dummy credentials: moto accepts any; nothing here can reach AWS.
LOCAL_AWS  := AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=eu-west-2 \
              AWS_ENDPOINT_URL=http://$(MOTO_HOST):$(MOTO_PORT)

.PHONY: help dev test test-template send tool scan replay sms quoted fmt lint package sizes clean \
        validate render deploy gate push sync-config backfill sam-validate bench reliability

help:
	@echo "make dev    run Frontdesk locally on http://$(DEV_ADDR) (moto as AWS, TENANT=$(TENANT))"
	@echo "            TENANT=prompts/<folder> serves another business; FRONTDESK_NOW=<RFC 3339> starts its clock there"
	@echo "make test   run every test (unit, black-box against moto + wiremock, template)"
	@echo "make send   sign and POST a sample webhook to the local server (EVENT=$(EVENT))"
	@echo "make tool   POST a tool or conversation-init sample with the local tool secret"
	@echo "            (EVENT=events/<function>/apigw-<function>.json; NOW=<RFC 3339> runs it as of then)"
	@echo "make scan   run one quality scan of the local stack now (make dev running; SINCE=<RFC 3339> rescans from then)"
	@echo "make quoted mark a lead quoted on the local stack (LEAD=<lead id> QUOTE=<amount>): its follow-ups start"
	@echo "make replay run the quality rules over exported transcripts, writing nothing"
	@echo "            (DIR=<folder of ElevenLabs transcript JSON>; RULES=<assertions.toml> to try other rules)"
	@echo "make sizes  build the arm64 Lambda zips (make package) and print their sizes"
	@echo "make bench  the performance figures of BENCHMARKS.md (arm64 artefact sizes, start-up beside a hello-world floor and a Python peer, cost, criterion)"
	@echo "make reliability  the reliability figures of BENCHMARKS.md (load, faults, bad input; not part of make test)"
	@echo ""
	@echo "Provisioning a business (TENANT=<name under prompts/> or a folder; README: Provision a business):"
	@echo "make validate TENANT=acme   check every file of the tenant folder (file and field of each problem)"
	@echo "make render TENANT=acme     print the ElevenLabs agent configuration it makes"
	@echo "make deploy TENANT=acme     sam build + sam deploy --config-env acme, then sync the folder into the stack"
	@echo "make gate TENANT=acme       run its scenarios as ElevenLabs agent tests + the quality rules (writes gate.json)"
	@echo "make push TENANT=acme       send tools, agent and webhook to ElevenLabs (DRY_RUN=1: show the diff only)"
	@echo "make backfill TENANT=acme SINCE=24h   process calls whose webhook never arrived"
	@echo "make sam-validate           sam validate --lint (SAM CLI from PyPI into .venv-sam)"

$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

dev: $(VENV)/.installed
	@test -f "$(TENANT_DIR)/business.toml" || { echo "no tenant folder: $(TENANT_DIR)/business.toml not found"; exit 2; }
	@$(BUILD) --quiet
	@mkdir -p .local
	@echo "Starting moto (local AWS) on $(MOTO_HOST):$(MOTO_PORT)..."
	@$(VENV)/bin/python tests/moto_server.py $(MOTO_HOST) $(MOTO_PORT) > .local/moto.log 2>&1 & moto=$$!; \
	trap 'kill $$moto 2>/dev/null' EXIT INT TERM; \
	for i in $$(seq 1 100); do curl -s -o /dev/null http://$(MOTO_HOST):$(MOTO_PORT)/moto-api/ && break; sleep 0.1; done; \
	$(LOCAL_AWS) FRONTDESK_LOCAL_ADDR=$(DEV_ADDR) FRONTDESK_LOG_FORMAT=$${FRONTDESK_LOG_FORMAT:-text} \
	  TWILIO_API_BASE_URL=$${TWILIO_API_BASE_URL:-https://api.twilio.com} \
	  FRONTDESK_PROMPTS=$(TENANT_DIR) FRONTDESK_NOW=$(FRONTDESK_NOW) FRONTDESK_SCAN_SETTLE_SECS=0 \
	  ./target/debug/frontdesk-local serve

send:
	@test -f "$(EVENT)" || { echo "no such file: $(EVENT)"; exit 2; }
	@$(BUILD) --quiet
	@sig=$$(FRONTDESK_NOW=$(FRONTDESK_NOW) ./target/debug/frontdesk-local sign "$(EVENT)") && \
	curl -sS -X POST "http://$(DEV_ADDR)/webhooks/elevenlabs/post-call" \
	  -H "Content-Type: application/json" -H "ElevenLabs-Signature: $$sig" \
	  --data-binary @"$(EVENT)" -w '\nHTTP %{http_code}\n'

# The sample's path and body, with the tool secret make dev generated in .local/secrets.env.
tool:
	@test -f "$(EVENT)" || { echo "no such file: $(EVENT)"; exit 2; }
	@test -f .local/secrets.env || { echo "run make dev first (it writes .local/secrets.env)"; exit 2; }
	@secret=$$(sed -n 's/^TOOL_SECRET=//p' .local/secrets.env); \
	path=$$($(PYTHON) -c 'import json,sys; print(json.load(open(sys.argv[1]))["rawPath"])' "$(EVENT)"); \
	$(PYTHON) -c 'import json,sys; sys.stdout.write(json.load(open(sys.argv[1]))["body"])' "$(EVENT)" | \
	curl -sS -X POST "http://$(DEV_ADDR)$$path" -H "Content-Type: application/json" \
	  -H "x-frontdesk-tool-secret: $$secret" $(if $(NOW),-H "x-frontdesk-now: $(NOW)") \
	  --data-binary @- -w '\nHTTP %{http_code}\n'

# One scan of the stack make dev is serving (same moto, same tenant folder), printed.
scan:
	@curl -s -o /dev/null http://$(MOTO_HOST):$(MOTO_PORT)/moto-api/ || { echo "the local stack is not running: start make dev first"; exit 2; }
	@$(BUILD) --quiet
	@$(LOCAL_AWS) FRONTDESK_PROMPTS=$(TENANT_DIR) FRONTDESK_NOW=$(FRONTDESK_NOW) FRONTDESK_SCAN_SETTLE_SECS=0 \
	  ./target/debug/frontdesk-local scan $(if $(SINCE),--since $(SINCE))

# An inbound text to the running make dev, signed as Twilio signs it (FROM may be whatsapp:+44...).
FROM ?= +447400123456
BODY ?= Hi, can someone look at my boiler this week?
sms:
	@curl -s -o /dev/null http://$(DEV_ADDR)/ ; test $$? -ne 7 || { echo "make dev is not running on $(DEV_ADDR)"; exit 2; }
	@$(BUILD) --quiet
	@FRONTDESK_LOCAL_ADDR=$(DEV_ADDR) ./target/debug/frontdesk-local sms "$(FROM)" "$(BODY)"

# The owner sent a quote: its follow-ups start (3 and 7 days to the customer, 14 to the owner).
quoted:
	@test -n "$(LEAD)" || { echo "LEAD=<lead id> is required (QUOTE=<amount> optional)"; exit 2; }
	@$(BUILD) --quiet
	@FRONTDESK_LOCAL_ADDR=$(DEV_ADDR) FRONTDESK_PROMPTS=$(TENANT_DIR) ./target/debug/frontdesk-local quoted "$(LEAD)" $(if $(QUOTE),"$(QUOTE)")

# The tenant's rules (or RULES) over a folder of exported transcripts; reads files only.
replay:
	@test -d "$(DIR)" || { echo "DIR=<folder of ElevenLabs transcript JSON> is required"; exit 2; }
	@$(BUILD) --quiet
	@FRONTDESK_PROMPTS=$(TENANT_DIR) ./target/debug/frontdesk-local replay "$(DIR)" $(if $(RULES),--rules "$(RULES)")

$(CHROMIUM):
	@echo "Installing Debian's chromium for the console's browser test (once)..."
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null

# The operator's CLI (target/debug/frontdesk); `frontdesk --help` says more. The tenant is a
# name under prompts/ or a folder.
FRONTDESK  := ./target/debug/frontdesk
TENANT_ARG  = $(if $(findstring /,$(TENANT)),$(TENANT),$(notdir $(TENANT_DIR)))

validate render gate push sync-config backfill:
	@test -f "$(TENANT_DIR)/business.toml" || { echo "no tenant folder: $(TENANT_DIR)/business.toml not found (cp -r prompts/_template prompts/<tenant>)"; exit 2; }
	@$(BUILD) --quiet
	@$(FRONTDESK) $@ $(TENANT_ARG) $(if $(filter push,$@),$(if $(DRY_RUN),--dry-run)) $(if $(filter backfill,$@),--since $(or $(SINCE),24h)) $(if $(API_URL),--api-url $(API_URL))

SAM_VENV := .venv-sam
SAM      := $(SAM_VENV)/bin/sam

$(SAM_VENV)/.installed: tests/requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-sam.txt
	touch $@

sam-validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --region eu-west-2

# One business's stack: the folder checked, the functions built for arm64 with cargo-lambda
# (as `make package` does) and deployed with samconfig.toml's [<tenant>.*] environment, then
# the folder synced into the stack's table. Needs AWS credentials.
deploy: $(SAM_VENV)/.installed $(LAMBDA_VENV)/.installed
	@test -f "$(TENANT_DIR)/business.toml" || { echo "no tenant folder: $(TENANT_DIR)/business.toml not found"; exit 2; }
	@$(BUILD) --quiet
	$(FRONTDESK) validate $(TENANT_ARG)
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" $(SAM) build --config-env $(notdir $(TENANT_DIR))
	$(SAM) deploy --config-env $(notdir $(TENANT_DIR))
	$(FRONTDESK) sync-config $(TENANT_ARG)

test: $(VENV)/.installed $(CHROMIUM) lint
	@mkdir -p .local
	@rm -f .local/simulated-week.txt
	$(BUILD)
	FRONTDESK_CHROMIUM=$(CHROMIUM) cargo test --workspace --all-features --no-fail-fast 2>&1 | tee .local/cargo-test.log
	$(VENV)/bin/python tests/template/validate.py template.yaml
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "Total: %d passed, %d failed\n", p + 1, f }' .local/cargo-test.log
	@cat .local/simulated-week.txt 2>/dev/null || true

test-template: $(VENV)/.installed
	$(VENV)/bin/python tests/template/validate.py template.yaml

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-features --all-targets -- -D warnings
	@# make reliability's suites are never built by make test (test = false): linted here so they never rot.
	cargo clippy -p frontdesk-blackbox --all-features $(addprefix --test ,$(RELIABILITY)) -- -D warnings
	@# One TLS stack (ring, shared/src/https.rs): a dependency that brings aws-lc back fails here.
	@! grep -q '^name = "aws-lc' Cargo.lock || { echo "aws-lc is in Cargo.lock again: TLS goes through frontdesk::https (ring)"; exit 1; }

FUNCTIONS  := post-call retry-worker quality-scan qa-api conversation-init check-availability create-booking update-booking \
              upsert-contact capture-lead dispatch-lead escalation-target log-call \
              twilio-messaging twilio-status web-form outbox-sweep reconcile

$(LAMBDA_VENV)/.installed: tests/requirements-build.txt
	$(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-build.txt
	rustup target add aarch64-unknown-linux-gnu
	touch $@

# The deployable artefacts: arm64 (Graviton) release builds zipped as Lambda wants them
# (target/lambda/<function>/bootstrap.zip), built as `sam build` does with cargo-lambda.
package: $(LAMBDA_VENV)/.installed
	PATH="$(CURDIR)/$(LAMBDA_VENV)/bin:$$PATH" \
	  cargo lambda build --release --arm64 --output-format zip $(addprefix -p ,$(FUNCTIONS))

sizes: package
	@for f in $(FUNCTIONS); do \
	  printf "%-14s arm64 binary %9d bytes   zipped %9d bytes\n" $$f \
	    $$(unzip -l target/lambda/$$f/bootstrap.zip | awk '$$4 == "bootstrap" {print $$1}') \
	    $$(stat -c %s target/lambda/$$f/bootstrap.zip); done

# BENCHMARKS.md's figures: start-up of release binaries under a local Lambda Runtime API
# emulator beside a hello-world floor (tests/bench/), then the criterion benches. Not part of
# make test.
BENCH_BINS := post-call check-availability create-booking twilio-messaging bench-hello

BENCH_VENV := .venv-bench

$(BENCH_VENV)/.installed: tests/requirements-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements-bench.txt
	touch $@

bench: $(VENV)/.installed $(BENCH_VENV)/.installed
	@mkdir -p .local/bench
	@$(BUILD) --quiet
	$(MAKE) --no-print-directory sizes | tee .local/bench/sizes.txt
	cargo build --release --quiet $(addprefix -p ,$(BENCH_BINS))
	$(PYTHON) tests/bench/startup.py
	$(PYTHON) tests/bench/cost.py | tee .local/bench/cost.txt
	cargo bench -p frontdesk $(addprefix --bench ,$(CRITERION)) 2>&1 | tee .local/bench/criterion.txt

CRITERION := signatures post_call tools availability quality

# BENCHMARKS.md's reliability figures: bursts of concurrent calls, webhooks and texts against
# the local stack, the fakes and AWS failing then recovering, and bad input of every kind
# (property tests time-boxed by FRONTDESK_FUZZ_SECS, a malformed-request corpus for every
# route). Not part of make test.
RELIABILITY := reliability bad_input

reliability: $(VENV)/.installed
	@mkdir -p .local
	@$(BUILD) --quiet
	cargo build -p frontdesk-blackbox --all-features --quiet $(addprefix --test ,$(RELIABILITY))
	cargo test -p frontdesk-blackbox --all-features $(addprefix --test ,$(RELIABILITY)) \
	  -- --nocapture --test-threads=1 2>&1 | tee .local/reliability.log

clean:
	cargo clean
	rm -rf $(VENV) $(LAMBDA_VENV) $(SAM_VENV) $(BENCH_VENV) .local
