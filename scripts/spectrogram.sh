#!/usr/bin/env bash
# Draws the README's picture: a spectrogram of a keyed card number before and
# after `cardveil mask`, as docs/masking.png. Needs sox (apt-get install sox).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cardveil-cli
out=target/spectrogram
mkdir -p "$out" docs
bin=target/release/cardveil
"$bin" example "$out/card.wav"
"$bin" mask "$out/card.wav" -o "$out/card-masked.wav" >/dev/null
# The first 2.6 s: the PAN's first eight keys.
sox "$out/card.wav" -n trim 0 2.6 spectrogram -x 900 -y 257 -z 90 -t "keyed card number (input)" -c "" -o "$out/before.png"
sox "$out/card-masked.wav" -n trim 0 2.6 spectrogram -x 900 -y 257 -z 90 -t "after cardveil mask (silence)" -c "" -o "$out/after.png"
sox "$out/card.wav" "$out/card-masked.wav" -M -n trim 0 2.6 remix 1 2 spectrogram -x 900 -y 257 -z 90 \
    -t "cardveil mask: keyed card number before (top) and after (bottom)" -c "" -o docs/masking.png
echo "wrote docs/masking.png"
