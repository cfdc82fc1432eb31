//! A fresh PostgreSQL database per test, on the server named by
//! `CARDVEIL_TEST_POSTGRES` (libpq key=value form; `scripts/test.sh`
//! starts a throwaway server on loopback and sets it). Without it the
//! PostgreSQL tests say SKIPPED, and fail under CI.

use std::sync::atomic::{AtomicU32, Ordering};

/// Connection parameters of a new, empty database, or `None` (skipped).
pub fn fresh_database(what: &str) -> Option<String> {
    let Ok(base) = std::env::var("CARDVEIL_TEST_POSTGRES") else {
        if std::env::var_os("CI").is_some() {
            panic!("CARDVEIL_TEST_POSTGRES is required for {what} in CI (scripts/test.sh starts a server)");
        }
        eprintln!("SKIPPED {what}: set CARDVEIL_TEST_POSTGRES or run scripts/test.sh");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("cardveil_t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("connect to CARDVEIL_TEST_POSTGRES");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).expect("drop old test database");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
    Some(format!("{base} dbname={name}"))
}
