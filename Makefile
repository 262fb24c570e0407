# ceb179: the two commands of the README are `make run` and `make test`.

GO ?= go
# Tests that need SoftHSM2 run when its module is installed (CI installs it).
SOFTHSM2_MODULE ?= $(firstword $(wildcard /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so))
TEST_TAGS := $(if $(SOFTHSM2_MODULE),softhsm2,)

# The Lambda functions, by the name template.yaml gives them (<Name>Function)
# and built from functions/<name>.
FUNCTIONS := Ingest Assemble Upload Payments Settle Notify

.PHONY: run test lint vet fmt-check tidy-check build bench fuzz lambdas cfnspec \
	$(FUNCTIONS:%=build-%Function)

# `make run` builds the command and runs it in make's place, rather than
# `go run`: go run exits 1 whenever it was interrupted, whatever the
# program's own exit status (golang/go#40467), so every Ctrl-C would end in
# a make error. CEB179_BIN is where it is built; RUN_ARGS are passed to
# `ceb179 local` (for example RUN_ARGS='--data .ceb179').
CEB179_BIN ?= build/ceb179
RUN_ARGS ?=

run:
	$(GO) build -o $(CEB179_BIN) ./cmd/ceb179
	exec $(CEB179_BIN) local $(RUN_ARGS)

# The CloudFormation resource specification the template is checked
# against (infra's TestTemplateMatchesCloudFormationSpec), fetched once with
# npm into a cache that is not committed. Keep the version in step with
# infra.SpecPackage.
CFNSPEC_PACKAGE := @aws-cdk/aws-service-spec@0.1.216
CFNSPEC := .cache/cfnspec/db.json.gz

cfnspec: $(CFNSPEC)

$(CFNSPEC):
	@mkdir -p $(dir $@)
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent $(CFNSPEC_PACKAGE) >/dev/null && \
		tar -xzf *.tgz package/db.json.gz && mv package/db.json.gz $(abspath $@) && cd / && rm -rf $$tmp

test: fmt-check tidy-check vet lint $(CFNSPEC)
	CEB179_CFNSPEC=$(abspath $(CFNSPEC)) SOFTHSM2_MODULE=$(SOFTHSM2_MODULE) $(GO) test -tags '$(TEST_TAGS)' -count=1 ./...

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

# Lambda bootstraps. `sam build` runs build-<LogicalId> (BuildMethod:
# makefile in template.yaml) with ARTIFACTS_DIR set; `make lambdas` builds
# all six into build/lambda/<name>/bootstrap and prints their sizes.
LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -ldflags='-s -w'
LAMBDA_ENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
lower = $(shell echo $(1) | tr A-Z a-z)

$(FUNCTIONS:%=build-%Function): build-%Function:
	$(LAMBDA_ENV) $(GO) build $(LAMBDA_GOFLAGS) -o $(or $(ARTIFACTS_DIR),build/lambda/$(call lower,$*))/bootstrap ./functions/$(call lower,$*)

lambdas:
	@for f in $(FUNCTIONS); do $(MAKE) --no-print-directory build-$${f}Function || exit 1; done
	@ls -l build/lambda/*/bootstrap
