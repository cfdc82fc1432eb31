//! Crash safety: a child process tokenizes in a loop and is killed with
//! SIGKILL mid-stream; after the "restart" every token it reported reveals
//! the right PAN, and the audit chain still verifies — for both stores.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cardveil_core::vault::{PostgresStore, SqliteStore, Store, StoreVault, Vault, VaultConfig, keyfile};
use cardveil_tests::pan_number;

/// Runs the churner, kills it after `reports` tokens (plus a random extra
/// few milliseconds, to land inside a transaction), returns what it reported.
fn churn_and_kill(args: &[&str], reports: usize, extra_ms: u64) -> Vec<(u64, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vault_churn"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut reported = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while reported.len() < reports {
        assert!(Instant::now() < deadline, "the churner is too slow");
        let line = lines.next().expect("churner ended early").unwrap();
        let (i, token) = line.split_once(' ').unwrap();
        reported.push((i.parse().unwrap(), token.to_owned()));
    }
    std::thread::sleep(Duration::from_millis(extra_ms));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    // Lines written before the kill but not yet read count too.
    for line in lines.map_while(Result::ok) {
        if let Some((i, token)) = line.split_once(' ') {
            reported.push((i.parse().unwrap(), token.to_owned()));
        }
    }
    reported
}

fn check_after_restart<S: Store>(store: S, key_file: &std::path::Path, reported: &[(u64, String)]) {
    let mut v = StoreVault::open(store, keyfile::load(key_file).unwrap(), VaultConfig::default()).unwrap();
    for (i, token) in reported {
        assert_eq!(v.detokenize(token, "crash-test").unwrap().expose(), pan_number(*i).expose(), "token {i}");
    }
    assert!(v.verify_audit().unwrap() >= reported.len() as u64);
}

fn key_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cardveil-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let k = dir.join(format!("{name}.key"));
    let _ = std::fs::remove_file(&k);
    keyfile::load_or_create(&k).unwrap();
    k
}

#[test]
fn sqlite_tokens_reported_before_sigkill_survive() {
    let key = key_file("sqlite");
    let db = key.with_extension("sqlite");
    let _ = std::fs::remove_file(&db);
    let mut all = Vec::new();
    for (round, extra) in [(0, 0), (1, 3), (2, 7)] {
        let reported = churn_and_kill(&["sqlite", db.to_str().unwrap(), key.to_str().unwrap()], 50 + 25 * round, extra);
        all.extend(reported);
        check_after_restart(SqliteStore::open(&db).unwrap(), &key, &all);
    }
    println!("sqlite: {} tokens reported across 3 kills, all reveal their PAN", all.len());
}

#[test]
fn postgres_tokens_reported_before_sigkill_survive() {
    let Some(url) = cardveil_tests::pg::fresh_database("the PostgreSQL crash test") else { return };
    let key = key_file("postgres");
    let mut all = Vec::new();
    for (round, extra) in [(0, 0), (1, 3), (2, 7)] {
        let reported = churn_and_kill(&["postgres", &url, key.to_str().unwrap()], 50 + 25 * round, extra);
        all.extend(reported);
        check_after_restart(PostgresStore::connect(&url).unwrap(), &key, &all);
    }
    println!("postgres: {} tokens reported across 3 kills, all reveal their PAN", all.len());
}
