# composeci — build, test, demo. Only Go is needed; the Makefile installs the rest.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(GOBIN)/staticcheck
BIN       := bin/composeci
# The race detector needs cgo; CI and developers have gcc.
TESTFLAGS ?= -race -count=1 -timeout 12m
TESTPKGS  ?= ./...
# make fuzz: time per fuzz target, and targets fuzzed at once (one worker each).
FUZZTIME  ?= 30s
FUZZJOBS  ?= 2
# make soak: the long runs.
SOAKFLAGS ?= -race -count=1 -timeout 4h
SOAKPKGS  ?= ./...
SOAKFUZZTIME ?= 10m

.PHONY: all build test fuzz soak lint vet staticcheck gofmt browser demo bench fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/composeci

## test: vet, staticcheck, gofmt, then every test with the race detector (HTML in a real chromium).
## Tests that need RabbitMQ or NATS (internal/testenv) skip when it is down — fail under CI=true —
## and record it in a file of this run: a line after the results names them and how to start it.
test: vet staticcheck gofmt browser
	@skips=$$(mktemp "$${TMPDIR:-/tmp}/composeci-test-skips.XXXXXX") || exit 1; \
	echo "$(GO) test $(TESTFLAGS) $(TESTPKGS)"; \
	COMPOSECI_TEST_SKIPS=$$skips $(GO) test $(TESTFLAGS) $(TESTPKGS); status=$$?; \
	if [ -s "$$skips" ]; then $(GO) run ./internal/testenv/skipsummary "$$skips"; fi; \
	rm -f "$$skips"; exit $$status

## fuzz: every fuzz target (found in the source: func FuzzXxx) for FUZZTIME each, FUZZJOBS at a
## time, seeds from testdata/fuzz/ and f.Add; a summary line per target; the first crash fails it
## (.ci/fuzz). FUZZ=regexp picks targets by name.
fuzz:
	@FUZZTIME='$(FUZZTIME)' FUZZJOBS='$(FUZZJOBS)' FUZZ='$(FUZZ)' GO='$(GO)' .ci/fuzz

## soak: the long runs, for a release or a night: every test with COMPOSECI_SOAK=1 (the long
## versions: 100 kills in TestKillMatrix, ...) and CI=true (a service that is down fails the run
## instead of skipping tests), then make fuzz for SOAKFUZZTIME (10m) a target.
soak: browser
	CI=true COMPOSECI_SOAK=1 $(GO) test $(SOAKFLAGS) $(SOAKPKGS)
	$(MAKE) fuzz FUZZTIME=$(SOAKFUZZTIME)

vet:
	$(GO) vet ./...

$(STATICCHECK):
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

## browser: Debian's chromium for the real-browser tests of HTML pages (internal/browsertest),
## installed with apt only when /usr/bin/chromium is missing; never downloaded from anywhere else.
## Skipped when CHROMIUM names another executable, or with COMPOSECI_SKIP_BROWSER=1.
browser:
	@if [ "$$COMPOSECI_SKIP_BROWSER" = 1 ] || [ -x /usr/bin/chromium ] || { [ -n "$$CHROMIUM" ] && [ -x "$$CHROMIUM" ]; }; then \
		exit 0; \
	fi; \
	echo "installing Debian's chromium for the browser tests"; \
	log=$$(mktemp); \
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >$$log 2>&1; then \
		cat $$log; rm -f $$log; echo "could not install chromium (root and apt are needed)"; exit 1; \
	fi; \
	rm -f $$log

lint: vet staticcheck gofmt

gofmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

## demo: two simulated nightlies, found, checked, tested and reported — no services needed.
demo: build
	./$(BIN) demo

## bench: the benchmarks named in the issues (parsers, Koji batching, checks).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
