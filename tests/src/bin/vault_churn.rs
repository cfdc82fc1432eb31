//! Test helper for the crash test: tokenizes PAN number i = 0, 1, 2, … in a
//! loop, printing "i token" after each commit, until it is killed.
//!
//! `vault_churn sqlite PATH KEYFILE` or `vault_churn postgres PARAMS KEYFILE`

use std::io::Write;

use cardveil_core::vault::{PostgresStore, SqliteStore, Store, StoreVault, Vault, VaultConfig, keyfile};
use cardveil_tests::pan_number;

fn churn<S: Store>(store: S, key_file: &str) -> ! {
    let keys = keyfile::load(key_file.as_ref()).expect("key file");
    let mut v = StoreVault::open(store, keys, VaultConfig::default()).expect("open vault");
    let stdout = std::io::stdout();
    for i in 0.. {
        let pan = pan_number(i);
        let token = v.tokenize(&pan, None, "churn").expect("tokenize").token;
        // Reported only once committed.
        let mut out = stdout.lock();
        writeln!(out, "{i} {token}").and_then(|_| out.flush()).expect("stdout");
    }
    unreachable!()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1..4) {
        Some([kind, at, key]) if kind == "sqlite" => churn(SqliteStore::open(at.as_ref()).expect("sqlite"), key),
        Some([kind, at, key]) if kind == "postgres" => churn(PostgresStore::connect(at).expect("postgres"), key),
        _ => {
            eprintln!("usage: vault_churn sqlite|postgres PATH|PARAMS KEYFILE");
            std::process::exit(2);
        }
    }
}
