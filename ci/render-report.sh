#!/usr/bin/env bash
# Renders every Mermaid diagram of a report.md with the mermaid CLI (npm @mermaid-js/mermaid-cli,
# installed by .ci/run into target/tools) and Debian's Chromium (ci/puppeteer.json), one PNG per
# diagram into OUT_DIR. Fails when the CLI fails (a diagram that does not parse), when the file
# has no diagram, or when a PNG is missing or empty.
#
# usage: ci/render-report.sh REPORT_MD OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
md=${1:?usage: ci/render-report.sh REPORT_MD OUT_DIR}
out=${2:?usage: ci/render-report.sh REPORT_MD OUT_DIR}
mmdc="$here/../target/tools/node_modules/.bin/mmdc"
[ -x "$mmdc" ] || { echo "render-report: no mermaid CLI at $mmdc (.ci/run installs it)" >&2; exit 1; }
charts=$(grep -c '^```mermaid$' "$md" || true)
[ "$charts" -gt 0 ] || { echo "render-report: no mermaid diagram in $md" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/report-*.png
"$mmdc" -q -p "$here/puppeteer.json" -i "$md" -o "$out/report.md" -e png -w 1600
for i in $(seq 1 "$charts"); do
  png="$out/report-$i.png"
  [ -s "$png" ] || { echo "render-report: diagram $i of $md did not render to $png" >&2; exit 1; }
done
echo "render-report: $charts diagram(s) of $md rendered: $out/report-*.png"
