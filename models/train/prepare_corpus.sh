#!/usr/bin/env bash
# Extracts the training corpus for the bundled default model: the King James Version of the Bible
# (public domain) from Debian's bible-kjv-text package, one verse a line without its reference.
# Usage: bash models/train/prepare_corpus.sh OUT.txt
set -euo pipefail
out=${1:?usage: prepare_corpus.sh OUT.txt}
if ! command -v bible >/dev/null; then
  apt-get install -y -qq --no-install-recommends bible-kjv >/dev/null
fi
bible -f gen1:1-rev22:21 | sed -E 's/^[0-9]?[A-Za-z]+[0-9]+:[0-9]+ //' > "$out"
echo "corpus: $(wc -l < "$out") lines, $(wc -c < "$out") bytes -> $out"
