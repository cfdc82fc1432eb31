//! Vault latency and throughput: tokenize and detokenize, each one
//! transaction with its audit record, on the SQLite file store
//! (`synchronous = FULL`: every commit reaches the disk) and on PostgreSQL
//! when `CARDVEIL_TEST_POSTGRES` names a server (scripts/postgres.sh).
//!
//! `cargo bench -p cardveil-benches --bench vault`
//!
//! Criterion reports the mean per operation (throughput = 1 / mean on one
//! connection); each run also prints p50 and p99 of the individual
//! operations it timed.

use std::time::{Duration, Instant};

use cardveil_core::vault::Kek;
use cardveil_core::vault::{Keyring, PostgresStore, SqliteStore, Store, StoreVault, Vault, VaultConfig};
use cardveil_tests::pan_number;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn percentiles(label: &str, mut t: Vec<Duration>) {
    if t.is_empty() {
        return;
    }
    t.sort();
    let p = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
    eprintln!("{label}: {} operations, p50 {:?}, p99 {:?}", t.len(), p(0.5), p(0.99));
}

fn bench_store<S: Store>(c: &mut Criterion, name: &str, store: S) {
    let mut v = StoreVault::open(store, Keyring::new(Kek::new(1, &[4; 32])), VaultConfig::default()).unwrap();
    let mut g = c.benchmark_group(format!("vault_{name}"));
    g.throughput(Throughput::Elements(1));
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    let mut i = 0u64;
    let mut tokens = Vec::new();
    let mut times = Vec::new();
    g.bench_function("tokenize", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let pan = pan_number(i);
                i += 1;
                let t0 = Instant::now();
                let m = v.tokenize(&pan, None, "bench").unwrap();
                let dt = t0.elapsed();
                total += dt;
                times.push(dt);
                if tokens.len() < 10_000 {
                    tokens.push(m.token);
                }
            }
            total
        })
    });
    percentiles(&format!("vault_{name}/tokenize"), std::mem::take(&mut times));
    let mut j = 0;
    g.bench_function("detokenize", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let token = &tokens[j % tokens.len()];
                j += 1;
                let t0 = Instant::now();
                let pan = v.detokenize(token, "bench").unwrap();
                let dt = t0.elapsed();
                total += dt;
                times.push(dt);
                drop(pan);
            }
            total
        })
    });
    percentiles(&format!("vault_{name}/detokenize"), times);
    g.finish();
}

fn vault(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("cardveil-bench-vault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    bench_store(c, "sqlite_file", SqliteStore::open(&dir.join("bench.sqlite")).unwrap());
    bench_store(c, "sqlite_memory", SqliteStore::in_memory().unwrap());
    match std::env::var("CARDVEIL_TEST_POSTGRES") {
        Ok(base) => {
            let name = format!("cardveil_bench_{}", std::process::id());
            let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            bench_store(c, "postgres", PostgresStore::connect(&format!("{base} dbname={name}")).unwrap());
        }
        Err(_) => eprintln!("vault_postgres: skipped (set CARDVEIL_TEST_POSTGRES, e.g. from scripts/postgres.sh)"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, vault);
criterion_main!(benches);
