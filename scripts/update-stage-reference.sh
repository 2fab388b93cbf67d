#!/bin/sh
# Writes `trailwatch stages --format markdown` into README.md between its GENERATED markers
# (the stage reference comes from the stage kinds' settings schemas; a test checks the README
# against it). Usage: scripts/update-stage-reference.sh [TRAILWATCH_BINARY]
set -eu
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug/trailwatch}
if [ ! -x "$BIN" ]; then swift build --product trailwatch; fi
"$BIN" stages --format markdown | python3 -c '
import sys
begin = "<!-- BEGIN GENERATED: trailwatch stages --format markdown (edit the stage kinds, then run scripts/update-stage-reference.sh) -->"
end = "<!-- END GENERATED: trailwatch stages -->"
generated = sys.stdin.read()
readme = open("README.md", encoding="utf-8").read()
start = readme.index(begin) + len(begin) + 1
stop = readme.index(end, start)
open("README.md", "w", encoding="utf-8").write(readme[:start] + generated + readme[stop:])
'
echo "README.md: stage reference updated"
