# composeci — build, test, demo. Only Go is needed; the Makefile installs the rest.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(GOBIN)/staticcheck
BIN       := bin/composeci
# The race detector needs cgo; CI and developers have gcc.
TESTFLAGS ?= -race -count=1 -timeout 12m

.PHONY: all build test lint vet staticcheck demo bench fmt clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/composeci

## test: vet, staticcheck, then every test with the race detector.
test: vet staticcheck
	$(GO) test $(TESTFLAGS) ./...

vet:
	$(GO) vet ./...

$(STATICCHECK):
	GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

lint: vet staticcheck
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
