# ledgerd — common tasks. `make help` lists them.
GO      ?= go
BIN     ?= bin
FUZZTIME ?= 5s
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: help build test test-race bench fuzz lint clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build the binaries into ./bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN)/ ./cmd/...

test: ## run every test (the README's test command): packages in parallel, then the multi-process suites of test/ one at a time (they judge latency)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/test/')
	$(GO) test -count=1 -p 1 ./test/...

test-race: ## run every test under the race detector
	$(GO) test -count=1 -race ./...

bench: ## run the Go benchmarks once each
	$(GO) test -run '^$$' -bench . -benchmem ./...

fuzz: ## run every fuzz target for FUZZTIME each
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

lint: ## gofmt, go vet, and the import rules of internal/ (go doc ./internal)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./internal

clean: ## remove build output
	rm -rf $(BIN)

.PHONY: localnet-start localnet-stop localnet-status localnet-logs localnet-clean docker-up docker-down docker-status docker-logs

localnet-start: ## start a 4-validator network of processes on loopback (build/localnet)
	bash scripts/localnet.sh start 4
localnet-stop: ## stop the process network
	bash scripts/localnet.sh stop
localnet-status: ## show each node's state and height
	bash scripts/localnet.sh status
localnet-logs: ## follow the process network's logs
	bash scripts/localnet.sh logs
localnet-clean: ## stop and delete the process network
	bash scripts/localnet.sh clean
docker-up: ## start a 4-validator network under Docker Compose
	bash scripts/docker-localnet.sh up 4
docker-down: ## stop and remove the Docker network
	bash scripts/docker-localnet.sh down
docker-status: ## list the Docker network's containers
	bash scripts/docker-localnet.sh status
docker-logs: ## follow the Docker network's logs
	bash scripts/docker-localnet.sh logs
