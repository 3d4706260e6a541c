# edgeimg: the two entry points a new user needs are `make build SITE=...` and `make test`.
SITE ?= store-0412
NODE_SOURCES := $(shell find src -name '*.ts' 2>/dev/null)

.PHONY: build validate test probe-image bench clean deps

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

bench: dist/.edgeimg-built
	npm run --silent bench

clean:
	rm -rf dist out
