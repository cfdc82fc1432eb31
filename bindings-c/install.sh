#!/usr/bin/env bash
# Installs libcardveil (.a, .so), cardveil.h and cardveil.pc under PREFIX
# (default /usr/local), from a release build:
#   bindings-c/install.sh [PREFIX]
# then: cc app.c $(pkg-config --cflags --libs cardveil)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/usr/local}
cargo build -p cardveil-ffi --release
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
install -d "$prefix/lib" "$prefix/include" "$prefix/lib/pkgconfig"
install -m 644 target/release/libcardveil.a "$prefix/lib/"
install -m 755 target/release/libcardveil.so "$prefix/lib/"
install -m 644 bindings-c/include/cardveil.h "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" bindings-c/cardveil.pc.in >"$prefix/lib/pkgconfig/cardveil.pc"
echo "installed cardveil $version under $prefix"
