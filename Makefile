# ceb179: the two commands of the README are `make run` and `make test`.

GO ?= go
# Tests that need SoftHSM2 run when its module is installed (CI installs it).
SOFTHSM2_MODULE ?= $(firstword $(wildcard /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so))
TEST_TAGS := $(if $(SOFTHSM2_MODULE),softhsm2,)

.PHONY: run test lint vet fmt-check tidy-check build bench fuzz

run:
	$(GO) run ./cmd/ceb179 local

test: fmt-check tidy-check vet lint
	SOFTHSM2_MODULE=$(SOFTHSM2_MODULE) $(GO) test -tags '$(TEST_TAGS)' -count=1 ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tidy-check:
	@$(GO) mod tidy -diff || { echo "go mod tidy needed"; exit 1; }

vet:
	$(GO) vet -tags '$(TEST_TAGS)' ./...

lint:
	$(GO) tool staticcheck -tags '$(TEST_TAGS)' ./...

build:
	$(GO) build ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
