#!/usr/bin/env bash
# Render a run's report.html in headless Chromium and save a screenshot, to check that the
# self-contained HTML (embedded base64 PNGs, no network) displays.
#
# Usage: bench/render_report.sh runs/NAME/report.html [OUT.png] [WIDTH,HEIGHT]
# Needs Debian's chromium: apt-get update && apt-get install -y chromium
set -euo pipefail
usage="usage: render_report.sh REPORT.html [OUT.png] [WIDTH,HEIGHT]"
case "${1:-}" in
  -h|--help) echo "$usage"; exit 0 ;;
  "") echo "$usage" >&2; exit 2 ;;
  -*) echo "error: unknown option $1; $usage" >&2; exit 2 ;;
esac
[ -f "$1" ] || { echo "error: $1: not a file (pass a run's report.html)" >&2; exit 1; }
html=$(realpath "$1")
out=$(realpath -m "${2:-/tmp/report.png}")
size=${3:-1200,3000}
[[ "$size" =~ ^[0-9]+,[0-9]+$ ]] || { echo "error: size $size: expected WIDTH,HEIGHT such as 1200,3000" >&2; exit 2; }
[ -d "$(dirname "$out")" ] || { echo "error: $out: its directory does not exist" >&2; exit 1; }
browser=${CHROMIUM:-/usr/bin/chromium}
[ -x "$browser" ] || { echo "error: $browser not found (apt-get install -y chromium)" >&2; exit 1; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"  # an old screenshot must not pass for this one
# No network, no first-run or background services: the page must render from the file alone.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --screenshot="$out" --window-size="$size" "file://$html" \
  >/dev/null 2>&1
[ -s "$out" ] || { echo "error: no screenshot written to $out" >&2; exit 1; }
echo "$out"
