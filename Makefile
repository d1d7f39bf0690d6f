# onecharge — proves every booking is charged exactly once.
# A fresh machine needs only Go and make: ginkgo and stripe-mock are Go tools
# pinned in go.mod.

GO       ?= go
GINKGO   := $(GO) tool ginkgo
REPORTS  ?= reports
# Seed for every random choice of the suite (fault draws, amounts). Reports
# print it; rerun with SEED=<n> to reproduce a run.
SEED     ?= 20261204
PROCS    ?= 2

# Resolve (and on a cold machine build) stripe-mock once, so every test
# binary starts the same one instead of resolving it again.
export STRIPE_MOCK_BIN ?= $(shell $(GO) tool -n stripe-mock)
export ONECHARGE_SEED  := $(SEED)

.DEFAULT_GOAL := help
.PHONY: help verify report test unit specs vet serve

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

verify: ## the main job: run the acceptance suite, write reports/, fail on any duplicate charge
	@mkdir -p $(REPORTS)
	@rm -f $(REPORTS)/junit.xml $(REPORTS)/report.json $(REPORTS)/summary.json $(REPORTS)/audit.html
	@$(GINKGO) -p --procs=$(PROCS) --poll-progress-after=60s \
		--junit-report=junit.xml --json-report=report.json --output-dir=$(REPORTS) \
		./specs; suite=$$?; \
	$(GO) run ./cmd/onecharge report --in $(REPORTS)/report.json --out $(REPORTS); report=$$?; \
	[ $$suite -eq 0 ] && [ $$report -eq 0 ]

report: ## render reports/audit.html and summary.json from the last run
	$(GO) run ./cmd/onecharge report --in $(REPORTS)/report.json --out $(REPORTS)

test: vet unit specs ## all tests: go vet, unit tests with -race, the acceptance suite

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./support/... ./cmd/...

specs:
	$(GINKGO) -p --procs=$(PROCS) ./specs

serve: ## serve the Stripe API with the emulated idempotency layer on 127.0.0.1:12111
	$(GO) run ./cmd/onecharge serve --addr 127.0.0.1:12111
