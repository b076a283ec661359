# ledgerd — common tasks. `make help` lists them.
GO      ?= go
BIN     ?= bin
FUZZTIME ?= 5s

.PHONY: help build test test-race bench fuzz lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build the binaries into ./bin
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

test: ## run every test (the README's test command)
	$(GO) test -count=1 ./...

test-race: ## run every test under the race detector
	$(GO) test -count=1 -race ./...

bench: ## run the Go benchmarks once each
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run every fuzz target for FUZZTIME each
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## remove build output
	rm -rf $(BIN)
