#!/usr/bin/env bash
# Builds the real third-party programs the tests run against and caches them
# under $HOME/.cache/opentaco-test. Safe to run repeatedly; a cached binary
# is reused. Fails loudly when something cannot be built.
set -euo pipefail

CACHE="${HOME}/.cache/opentaco-test"
mkdir -p "$CACHE"

TOFU_VERSION=v1.10.7

build_tofu() {
	local bin="$CACHE/tofu-${TOFU_VERSION}"
	if [[ -x "$bin" ]] && "$bin" version 2>/dev/null | grep -qx "OpenTofu ${TOFU_VERSION}"; then
		echo "tofu: cached at $bin"
		return
	fi
	echo "tofu: building ${TOFU_VERSION} from the Go module proxy (several minutes)"
	local dir
	dir=$(go mod download -json "github.com/opentofu/opentofu@${TOFU_VERSION}" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -n "$dir" && -d "$dir" ]] || { echo "tofu: module download failed" >&2; exit 1; }
	local work
	work=$(mktemp -d)
	cp -r "$dir/." "$work/"
	chmod -R u+w "$work"
	(cd "$work" && go build -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o "$bin.tmp" ./cmd/tofu)
	mv "$bin.tmp" "$bin"
	rm -rf "$work"
	"$bin" version
}

OIDC_VERSION=v3.52.0

# An OpenID provider for the authentication tests: the example server of
# zitadel/oidc (users and clients are compiled in; see its storage package).
build_oidc() {
	local bin="$CACHE/oidc-server-${OIDC_VERSION}"
	if [[ -x "$bin" ]]; then
		echo "oidc: cached at $bin"
		return
	fi
	echo "oidc: building zitadel/oidc example server ${OIDC_VERSION}"
	local gobin
	gobin=$(mktemp -d)
	GOBIN="$gobin" go install "github.com/zitadel/oidc/v3/example/server@${OIDC_VERSION}"
	mv "$gobin/server" "$bin"
	rm -rf "$gobin"
}

case "${1:-all}" in
tofu) build_tofu ;;
oidc) build_oidc ;;
all) build_tofu; build_oidc ;;
*) echo "usage: $0 [tofu|oidc|all]" >&2; exit 2 ;;
esac
