//! Test helper for the scale-out test: one ng relay process (the library's
//! `NgRelay`, as `cardveil relay --ng` runs it, with an in-memory vault),
//! so a test can start two and kill one. Prints `ng ADDR`, then the
//! relay's event lines; ends when its stdin closes (or it is killed).
//!
//! `ng_relay NG-ADDR PORT-MIN PORT-MAX`

use std::io::{BufRead, Write};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, ng, min, max] = args.as_slice() else {
        eprintln!("usage: ng_relay NG-ADDR PORT-MIN PORT-MAX");
        std::process::exit(2);
    };
    let port = |p: &str| p.parse::<u16>().expect("a port number");
    let relay = cardveil_tests::ngcall::relay_at(ng.parse().expect("NG-ADDR"), (port(min), port(max)), 1);
    println!("ng {}", relay.addr);
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&closed);
    // Until the test closes stdin.
    std::thread::spawn(move || {
        for _ in std::io::stdin().lock().lines() {}
        flag.store(true, std::sync::atomic::Ordering::Release);
    });
    while !closed.load(std::sync::atomic::Ordering::Acquire) {
        if let Ok(line) = relay.lines.recv_timeout(std::time::Duration::from_millis(50)) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }
    relay.stop();
}
