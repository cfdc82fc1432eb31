#!/usr/bin/env bash
# Builds cardveil, writes example recordings of a caller keying the Visa test
# card 4111 1111 1111 1111 # 1229 # 123 # (16-bit PCM and G.711 μ-law),
# runs `cardveil detect` on each, masks each with `cardveil mask` and shows
# that nothing is left to detect; then captures the card from the μ-law call
# into a demo vault, reveals its token and verifies the audit trail; last,
# remediates a small archive (WAVs in a tree) with `cardveil scrub`, a signed
# manifest, and checks it with `cardveil verify`. Needs only the Rust toolchain.
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

# Capture: the same μ-law call, with the card captured and tokenized into a
# demo vault (a SQLite file and a development key file under target/demo).
vault="$out/vault.sqlite"
rm -f "$vault" "$vault.key" "$vault-wal" "$vault-shm"
f="$out/card-ulaw.wav"
echo "== cardveil mask $f -o ${f%.wav}-masked.wav --capture pan,expiry,cvv --vault $vault (agent-safe events only)"
"$bin" mask "$f" -o "${f%.wav}-masked.wav" --capture pan,expiry,cvv --vault "$vault" | grep -v '"event":"masked"' | tee "$out/capture.jsonl"
token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$out/capture.jsonl")
echo "== cardveil vault reveal $token --vault $vault (audited)"
"$bin" vault reveal "$token" --vault "$vault"
echo "== cardveil vault audit verify --vault $vault"
"$bin" vault audit verify --vault "$vault"

# Remediation: an archive of recordings in a tree, scrubbed into a mirror
# with a signed manifest, then checked as an assessor would.
archive="$out/archive"
rm -rf "$archive" "$out/scrubbed" "$out/manifest.key" "$out/manifest.key.pub"
mkdir -p "$archive/2024/01" "$archive/2024/02"
"$bin" example "$archive/2024/01/call-1.wav"
"$bin" example --encoding alaw "$archive/2024/02/call-2.wav"
"$bin" example --rate 16000 "$archive/2024/02/call-3.wav"
echo "== cardveil keygen $out/manifest.key"
"$bin" keygen "$out/manifest.key"
echo "== cardveil scrub $archive --out-dir $out/scrubbed --signing-key $out/manifest.key"
"$bin" scrub "$archive" --out-dir "$out/scrubbed" --signing-key "$out/manifest.key"
echo "== cardveil verify --manifest $out/scrubbed/manifest.jsonl --public-key $out/manifest.key.pub"
"$bin" verify --manifest "$out/scrubbed/manifest.jsonl" --public-key "$out/manifest.key.pub"
