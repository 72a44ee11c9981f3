#!/usr/bin/env bash
# The README's picture of a report: the top of REPORT (default runs/quickstart/report.html) as
# headless Chromium draws it at laptop width, written to OUT (default docs/quickstart-report.png).
# Chromium runs with no network and a throw-away profile, as the report's browser tests do.
set -euo pipefail
report="$(realpath "${1:-runs/quickstart/report.html}")"
out="${2:-docs/quickstart-report.png}"
size="${SIZE:-1280,1800}"
[ -f "$report" ] || { echo "no report at $report: run \`make quickstart\` first" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "no chromium on PATH: make setup installs Debian's" >&2; exit 2; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --host-resolver-rules="MAP * ~NOTFOUND" --user-data-dir="$profile" --hide-scrollbars \
    --window-size="$size" --screenshot="$(realpath -m "$out")" "file://$report" 2>/dev/null
echo "wrote $out from $report"
