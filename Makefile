# edgeimg: the two entry points a new user needs are `make build SITE=...` and `make test`.
SITE ?= store-0412
NODE_SOURCES := $(shell find src -name '*.ts' 2>/dev/null)

.PHONY: build generate validate test probe-image bench clean deps cloudinit-image cloudinit-check standin-images standin-check verify-usb container-image

node_modules/.edgeimg-deps: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.edgeimg-deps

# npm run build also precompiles the schema validators and templates (dist/precompiled/) and
# bundles the CLI with its code cache (dist/edgeimg.cjs): a schema or template edit rebuilds
GENERATED_FROM := $(shell find schemas -name '*.json' 2>/dev/null) $(wildcard templates/*.hbs) scripts/precompile.ts scripts/bundle.ts

dist/.edgeimg-built: node_modules/.edgeimg-deps $(NODE_SOURCES) $(GENERATED_FROM) tsconfig.json tsconfig.build.json
	npm run --silent build
	@touch $@

# Only the precompiled validators and templates (scripts/precompile.ts); `make generate CHECK=1`
# checks that they are current instead.
generate: node_modules/.edgeimg-deps
	node --import tsx scripts/precompile.ts $(if $(CHECK),--check)

build: dist/.edgeimg-built
	node bin/edgeimg.js build --site $(SITE)

validate: dist/.edgeimg-built
	node bin/edgeimg.js validate

test: dist/.edgeimg-built
	npx vitest run

probe-image:
	bash images/probe/build.sh

# Stand-in class boot ISOs (talos-like, kairos-like; amd64 and arm64) built from Debian packages
# around the probe image (images/standin/README.md), then put into the example catalogue's image
# cache at the asset paths its classes need, pinned in the cache's standin.lock (never in
# catalogue/images.lock). A quick no-op when up to date.
standin-images: probe-image dist/.edgeimg-built
	bash images/standin/build.sh
	node bin/edgeimg.js images standin --from images/cache/standin

# Every example site's USB field kits booted through real firmware (the whole matrix; CI boots a
# slice in test/boot/usb-kit.test.ts): make verify-usb [USB_SITES="store-0412 lab-0001"]
USB_SITES ?= store-0412 store-0007 plant-0031 lab-0001
verify-usb: standin-images
	node bin/edgeimg.js build $(foreach s,$(USB_SITES),--site $(s)) --media iso,img,onestick --allow-standin
	node bin/edgeimg.js verify $(foreach s,$(USB_SITES),--site $(s)) --boot --via usb

# Boots the stand-in ISOs through OVMF, SeaBIOS and AAVMF from USB sticks (TCG; a few minutes).
standin-check: node_modules/.edgeimg-deps standin-images
	node --import tsx bench/standin-check.ts $(STANDIN_CHECK_ARGS)

# The reference NoCloud client: Debian 12 with real cloud-init (docs/cloudinit.md). Building needs
# root, mmdebstrap and genext2fs; when the cached image is up to date this is a quick no-op.
cloudinit-image:
	bash images/cloudinit/build.sh

# Boots every example node's seed.iso and seed.img in the client and prints a pass/fail table.
# Extra arguments: make cloudinit-check CLOUDINIT_CHECK_ARGS="--site store-0412 --jobs 1"
cloudinit-check: node_modules/.edgeimg-deps cloudinit-image
	node --import tsx bench/cloudinit-check.ts $(CLOUDINIT_CHECK_ARGS)

# The CI and Kubernetes image (Containerfile, docs/ci.md): podman by default, or
# CONTAINER_TOOL=buildah (or docker). Pulls the pinned base image, so it needs network access to
# that registry; the tests only check the Containerfile statically (test/examples/).
CONTAINER_TOOL ?= podman
EDGEIMG_VERSION = $(shell node -p "require('./package.json').version" 2>/dev/null)
CONTAINER_IMAGE ?= edgeimg:$(EDGEIMG_VERSION)
container-image:
	$(CONTAINER_TOOL) build -f Containerfile -t $(CONTAINER_IMAGE) \
	  --build-arg EDGEIMG_VERSION=$(EDGEIMG_VERSION) \
	  --build-arg EDGEIMG_REVISION=$(shell git rev-parse HEAD 2>/dev/null || echo unknown) .

bench: dist/.edgeimg-built
	npm run --silent bench

clean:
	rm -rf dist out
