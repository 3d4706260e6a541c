# edgeimg: the two entry points a new user needs are `make build SITE=...` and `make test`.
SITE ?= store-0412
NODE_SOURCES := $(shell find src -name '*.ts' 2>/dev/null)

.PHONY: build validate test probe-image bench clean deps cloudinit-image cloudinit-check

node_modules/.edgeimg-deps: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.edgeimg-deps

dist/.edgeimg-built: node_modules/.edgeimg-deps $(NODE_SOURCES) tsconfig.json tsconfig.build.json
	npm run --silent build
	@touch $@

build: dist/.edgeimg-built
	node bin/edgeimg.js build --site $(SITE)

validate: dist/.edgeimg-built
	node bin/edgeimg.js validate

test: dist/.edgeimg-built
	npx vitest run

probe-image:
	bash images/probe/build.sh

# The reference NoCloud client: Debian 12 with real cloud-init (docs/cloudinit.md). Building needs
# root, mmdebstrap and genext2fs; when the cached image is up to date this is a quick no-op.
cloudinit-image:
	bash images/cloudinit/build.sh

# Boots every example node's seed.iso and seed.img in the client and prints a pass/fail table.
# Extra arguments: make cloudinit-check CLOUDINIT_CHECK_ARGS="--site store-0412 --jobs 1"
cloudinit-check: node_modules/.edgeimg-deps cloudinit-image
	node --import tsx bench/cloudinit-check.ts $(CLOUDINIT_CHECK_ARGS)

bench: dist/.edgeimg-built
	npm run --silent bench

clean:
	rm -rf dist out
