# onecharge — proves every booking is charged exactly once.
# A fresh machine needs only Go and make: ginkgo, stripe-mock and actionlint
# are Go tools pinned in go.mod.

GO       ?= go
GINKGO   := $(GO) tool ginkgo
REPORTS  ?= reports
BIN      := bin/onecharge
# Seed of every random choice of the suite (fault draws, amounts, jitter).
# Reports print it; rerun with SEED=<n> to reproduce a run.
SEED     ?= 20261204
PROCS    ?= 2

# Resolve (on a cold machine: build) stripe-mock once, so every test binary
# starts the same one instead of resolving it again.
export STRIPE_MOCK_BIN ?= $(shell $(GO) tool -n stripe-mock)
export ONECHARGE_SEED  := $(SEED)

.DEFAULT_GOAL := help
.PHONY: help verify report demo test vet unit specs testmode bench serve $(BIN)

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(BIN):
	@$(GO) build -o $(BIN) ./cmd/onecharge

# verify refuses a live key before anything runs, runs the suite, always
# renders the evidence (also for a failed run), scans it for secrets, and
# fails if any of them failed.
verify: $(BIN) ## the main job: run the acceptance suite, write reports/, fail on any duplicate charge
	@$(BIN) check-key
	@mkdir -p $(REPORTS)
	@rm -f $(REPORTS)/junit.xml $(REPORTS)/report.json $(REPORTS)/summary.json $(REPORTS)/audit.html \
		$(REPORTS)/keys.db $(REPORTS)/keys.db-wal $(REPORTS)/keys.db-shm $(REPORTS)/keys.csv
	@ONECHARGE_KEYSTORE=$(abspath $(REPORTS))/keys.db ONECHARGE_REPORTS=$(abspath $(REPORTS)) \
	$(GINKGO) -p --procs=$(PROCS) --poll-progress-after=60s \
		--junit-report=junit.xml --json-report=report.json --output-dir=$(REPORTS) \
		./specs; suite=$$?; \
	$(BIN) report --in $(REPORTS)/report.json --out $(REPORTS); report=$$?; \
	$(BIN) scan --dir $(REPORTS); scan=$$?; \
	[ $$suite -eq 0 ] && [ $$report -eq 0 ] && [ $$scan -eq 0 ]

report: $(BIN) ## render reports/audit.html, summary.json and keys.csv from the last run
	$(BIN) report --in $(REPORTS)/report.json --out $(REPORTS)

demo: ## watch the story: keys, faults, retries, one charge (verbose demonstration specs)
	$(GINKGO) -v --label-filter='demo' ./specs

test: vet unit specs testmode ## all tests: go vet, unit tests with -race, the suite, the test-mode path
	@echo "make test: all passed"

vet:
	$(GO) vet ./...

# The browser check of audit.html leaves its screenshot in reports/.
unit:
	@mkdir -p $(REPORTS)
	ONECHARGE_SCREENSHOT_DIR=$(abspath $(REPORTS)) $(GO) test -race -count=1 ./support/... ./cmd/...

specs:
	$(GINKGO) -p --procs=$(PROCS) ./specs

# The test-mode path end to end against a local TLS stand-in for
# api.stripe.com (this machine cannot reach Stripe), then the redaction scan
# of everything it wrote.
testmode: $(BIN)
	@rm -rf $(REPORTS)/testmode-check && mkdir -p $(REPORTS)/testmode-check
	STRIPE_API_KEY=sk_test_standIn0nechargeA1b2 ONECHARGE_TESTMODE_STANDIN=1 ONECHARGE_REPORTS=$(abspath $(REPORTS))/testmode-check \
		$(GINKGO) -p --procs=$(PROCS) --json-report=report.json --junit-report=junit.xml --output-dir=$(REPORTS)/testmode-check ./specs
	STRIPE_API_KEY=sk_test_standIn0nechargeA1b2 $(BIN) report --in $(REPORTS)/testmode-check/report.json --out $(REPORTS)/testmode-check
	STRIPE_API_KEY=sk_test_standIn0nechargeA1b2 $(BIN) scan --dir $(REPORTS)/testmode-check

bench: $(BIN) ## measure the harness: throughput vs stripe-mock and a proxy hop, replays, the idempotency layer, chaos at scale (reports/bench.json)
	@mkdir -p $(REPORTS)
	$(BIN) bench --out $(REPORTS)

serve: ## serve the Stripe API with the emulated idempotency layer on 127.0.0.1:12111
	$(GO) run ./cmd/onecharge serve --addr 127.0.0.1:12111
