#!/usr/bin/env bash
# Builds cardveil, writes example recordings of a caller keying the Visa test
# card 4111 1111 1111 1111 # 1229 # 123 # (16-bit PCM and G.711 μ-law),
# runs `cardveil detect` on each, masks each with `cardveil mask` and shows
# that nothing is left to detect. Needs only the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cardveil-cli
out=target/demo
mkdir -p "$out"
bin=target/release/cardveil
"$bin" example "$out/card-pcm16.wav"
"$bin" example --encoding ulaw "$out/card-ulaw.wav"
for f in "$out/card-pcm16.wav" "$out/card-ulaw.wav"; do
    echo "== cardveil detect $f"
    "$bin" detect "$f"
    masked="${f%.wav}-masked.wav"
    echo "== cardveil mask $f -o $masked"
    "$bin" mask "$f" -o "$masked"
    echo "== cardveil detect $masked (nothing left)"
    "$bin" detect "$masked"
done
