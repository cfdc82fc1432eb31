//! Links spandsp (LGPL) into this test-only crate when its development package
//! is installed, and sets `cfg(spandsp)`. Nothing shipped links it.
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(spandsp)");
    println!("cargo::rerun-if-env-changed=CARDVEIL_NO_SPANDSP");
    if std::env::var_os("CARDVEIL_NO_SPANDSP").is_some() {
        return;
    }
    let found = Command::new("pkg-config").args(["--exists", "spandsp"]).status().map(|s| s.success()).unwrap_or(false);
    if found {
        println!("cargo::rustc-cfg=spandsp");
        println!("cargo::rustc-link-lib=spandsp");
    }
}
