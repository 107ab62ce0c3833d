# sluice — the two commands a newcomer needs: `make demo` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BENCHTIME ?= 2s

.PHONY: all build demo test test-short lint fuzz bench chaos tools clean

# The S3-compatible server the tests start on 127.0.0.1 (versitygw, built
# from the Go module proxy into .tools/; rebuilt only when missing).
VERSITYGW_VERSION ?= v1.8.0
# helm renders and lints the chart in the tests.
HELM_VERSION ?= v3.22.0
TOOLS := $(CURDIR)/.tools
# hyparquet (JavaScript) reads every end-to-end file beside Arrow and DuckDB;
# installed from the npm registry into .tools/node (Node.js and npm needed).
HYPARQUET_VERSION ?= 1.33.0
HYPARQUET_COMPRESSORS_VERSION ?= 1.1.2
NODE_MODULES := $(TOOLS)/node/node_modules

all: lint test

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/sluice ./cmd/sluice

# Runs the pipeline end to end on embedded defaults: in-process Kafka broker,
# generated events, Parquet files in ./sluice-demo.
demo:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/sluice demo

# Every test, with the race detector: unit tables, fixtures, fuzz seeds,
# end-to-end runs against the in-process broker with sluice as a subprocess.
test: tools
	SLUICE_VERSITYGW=$(TOOLS)/versitygw SLUICE_HELM=$(TOOLS)/helm SLUICE_NODE_MODULES=$(NODE_MODULES) \
		$(GO) test -race -count=1 -timeout 30m ./...

tools: $(TOOLS)/versitygw $(TOOLS)/helm $(NODE_MODULES)/hyparquet/package.json

$(NODE_MODULES)/hyparquet/package.json:
	mkdir -p $(TOOLS)/node
	cd $(TOOLS)/node && npm install --no-audit --no-fund --no-save --prefix . \
		hyparquet@$(HYPARQUET_VERSION) hyparquet-compressors@$(HYPARQUET_COMPRESSORS_VERSION)

$(TOOLS)/helm:
	GOBIN=$(TOOLS) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(TOOLS)/versitygw:
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

test-short:
	$(GO) test -short -count=1 ./...

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Longer fault runs: 30 kills per crash test, every fault test three times.
CHAOS_CYCLES ?= 30
chaos: tools
	SLUICE_VERSITYGW=$(TOOLS)/versitygw SLUICE_CHAOS_CYCLES=$(CHAOS_CYCLES) \
		$(GO) test -count=3 -timeout 60m -run 'Crash|StoreFaults|RebalanceAndZombie|Restart' -v ./cmd/sluice

# Coverage-guided fuzzing of the decoder (FUZZTIME to change the budget).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./stages/decode

# Benchmarks per stage and end to end; BENCHMARKS.md records one run.
bench:
	@mkdir -p benchmarks/out
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 1 -timeout 30m ./benchmarks/ ./stages/... | tee benchmarks/out/bench.txt

clean:
	rm -rf bin sluice-demo benchmarks/out .tools
