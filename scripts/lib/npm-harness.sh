# shellcheck shell=bash
# npm_harness: install a test harness's pinned Node packages, for the
# scripts in scripts/deps.d. Sourced, not run.
#
#   npm_harness LOG SRC DEST MODULE
#
# Copies SRC/package.json and SRC/package-lock.json to DEST and runs
# `npm ci` there, unless DEST already holds that lock (and
# DEST/node_modules/MODULE); installs Debian's nodejs and npm with apt-get
# first when they are missing (as root). LOG names the script in its
# progress lines, on stderr. Returns non-zero when it cannot install.
npm_harness() {
	local name=$1 src=$2 dest=$3 module=$4 sum
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
			printf 'deps %s: node and npm are missing; install Debian'"'"'s nodejs and npm packages\n' "$name" >&2
			return 1
		fi
		printf 'deps %s: installing nodejs and npm with apt-get\n' "$name" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2 || {
			apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
		}
	fi
	sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
	if [ -f "$dest/.installed" ] && [ "$(<"$dest/.installed")" = "$sum" ] && [ -d "$dest/node_modules/$module" ]; then
		return 0
	fi
	printf 'deps %s: npm ci into %s\n' "$name" "$dest" >&2
	rm -rf "$dest"
	mkdir -p "$dest"
	cp "$src/package.json" "$src/package-lock.json" "$dest/"
	# --ignore-scripts: no package needs its install scripts here (msgpackr's
	# optional native speed-up is not needed).
	(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || return 1
	printf '%s\n' "$sum" >"$dest/.installed"
	printf 'deps %s: %s %s installed\n' "$name" "$module" "$(node -p "require('$dest/node_modules/$module/package.json').version")" >&2
}
