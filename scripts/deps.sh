#!/usr/bin/env bash
# Installs what the tests and the demo need on a Debian machine, or says
# what is missing. Usage: scripts/deps.sh [test|demo]
#
# As root with apt-get it installs Debian packages; otherwise it names what
# to install and, under CI=true, fails.
set -euo pipefail
mode=${1:-test}

# program -> Debian package
declare -A pkg=(
	[redis-server]=redis-server
	[swtpm]=swtpm
	[swtpm_setup]=swtpm-tools
	[chromium]=chromium
)
need=()
case "$mode" in
test) need=(redis-server swtpm swtpm_setup chromium) ;;
demo) need=() ;;
*) echo "deps.sh: unknown mode $mode" >&2; exit 2 ;;
esac

command -v go >/dev/null || { echo "deps.sh: Go is not installed: install Go 1.26 (https://go.dev/dl/) and retry" >&2; exit 1; }

missing=()
for p in "${need[@]}"; do
	command -v "$p" >/dev/null 2>&1 || missing+=("${pkg[$p]}")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "deps.sh: installing ${missing[*]} with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
		echo "deps.sh: install them with: sudo apt-get install ${missing[*]}" >&2
		if [ "${CI:-}" = true ]; then exit 1; fi
		echo "deps.sh: continuing; the tests that need them will be skipped" >&2
	fi
fi

if [ "$mode" = test ] && [ -f js/package.json ]; then
	command -v npm >/dev/null || { echo "deps.sh: npm is missing: install Node.js 20 and npm" >&2; exit 1; }
	(cd js && npm ci --no-audit --no-fund --loglevel=error)
fi
