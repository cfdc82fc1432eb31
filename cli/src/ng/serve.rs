//! `cardveil relay --ng ADDR`: the ng control socket in front of the
//! [`Engine`]. One thread reads the socket, answers through [`Server`]
//! (cookies, the reply cache, ping) and the engine, and prints the calls'
//! events as JSON lines (each with its `call-id`, never a key).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cardveil_core::capture::CaptureConfig;
use cardveil_core::rtp::{CLOCK_HZ, RtpStreamConfig};
use cardveil_core::vault::Worker;

use super::engine::{Engine, EngineConfig, Interface};
use super::{MAX_DATAGRAM, Server};
use crate::CliError;
use crate::json::Obj;

/// How long the control thread waits on the socket before it looks at the
/// media threads' events again.
const TICK: Duration = Duration::from_millis(20);

/// `cardveil relay --ng` arguments.
#[derive(Debug)]
pub struct NgArgs<'a> {
    /// The ng control socket.
    pub ng: SocketAddr,
    /// `--interface` (none: the ng socket's address, unless unspecified).
    pub interfaces: Vec<String>,
    /// `--ports MIN-MAX`.
    pub ports: &'a str,
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--timeout` seconds.
    pub timeout: u64,
    /// `--allow-unmasked`.
    pub allow_unmasked: bool,
    /// Both directions' stream settings.
    pub stream: RtpStreamConfig,
    /// `--capture` fields (default for the `capture` command: pan,expiry,cvv).
    pub capture: Option<&'a str>,
    /// The vault completed cards are tokenized into.
    pub vault: crate::vault::VaultLocation,
}

/// Parses `MIN-MAX`.
///
/// # Errors
/// Not two port numbers with MIN below MAX.
pub fn parse_ports(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("--ports {s:?}: expected MIN-MAX, e.g. 30000-39999");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u16, u16) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if a >= b {
        return Err(bad());
    }
    Ok((a, b))
}

/// The engine's settings from the arguments.
///
/// # Errors
/// A message for the user.
pub fn config(args: &NgArgs<'_>) -> Result<EngineConfig, String> {
    let mut interfaces = args.interfaces.iter().map(|s| Interface::parse(s)).collect::<Result<Vec<_>, _>>()?;
    if interfaces.is_empty() {
        if args.ng.ip().is_unspecified() {
            return Err("--ng on an unspecified address needs --interface ADDR (the media address)".into());
        }
        interfaces.push(Interface { name: "default".into(), addr: args.ng.ip() });
    }
    let fields = crate::capture::parse_fields(args.capture.unwrap_or("pan,expiry,cvv")).map_err(|e| e.to_string())?;
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
    Ok(EngineConfig {
        interfaces,
        ports: parse_ports(args.ports)?,
        threads,
        timeout: Duration::from_secs(args.timeout),
        stream: args.stream,
        capture: CaptureConfig { fields, ..CaptureConfig::standard(CLOCK_HZ, cardveil_core::call::today()) },
        allow_unmasked: args.allow_unmasked,
    })
}

/// A running ng relay: its control thread (the socket, the reply cache,
/// the engine) and the engine's media threads.
#[derive(Debug)]
pub struct NgRelay {
    /// The ng socket's address.
    pub addr: SocketAddr,
    /// The calls' events as JSON lines (each with its `call-id`, never a key).
    pub lines: Receiver<String>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NgRelay {
    /// Binds the ng socket at `ng` and starts the engine with `config`;
    /// `worker` tokenizes completed cards.
    ///
    /// # Errors
    /// The socket cannot be bound, the settings are refused, a thread cannot start.
    pub fn start(ng: SocketAddr, config: EngineConfig, worker: Option<Worker>) -> std::io::Result<NgRelay> {
        let socket = UdpSocket::bind(ng)?;
        socket.set_read_timeout(Some(TICK))?;
        let addr = socket.local_addr()?;
        let mut engine = Engine::start(config, worker)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, lines) = channel();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("cardveil-ng-control".into()).spawn(move || {
            let mut server = Server::new();
            let mut buf = vec![0u8; MAX_DATAGRAM + 1];
            while !flag.load(Ordering::Acquire) {
                if let Ok((n, from)) = socket.recv_from(&mut buf)
                    && let Some(reply) = server.handle(&buf[..n], Instant::now(), &mut engine)
                {
                    let _ = socket.send_to(&reply, from);
                }
                for line in engine.pump(Duration::ZERO) {
                    let _ = tx.send(line);
                }
            }
        })?;
        Ok(NgRelay { addr, lines, stop, thread: Some(thread) })
    }

    /// Stops the relay (every call ends, its ports are closed) and waits for its threads.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for NgRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the ng relay until it is killed: a first line with the
/// addresses, then one JSON line per event.
///
/// # Errors
/// Settings refused, a socket that cannot be bound, the vault, stdout.
pub fn run(args: NgArgs<'_>, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    let io = |what: &str, e: std::io::Error| CliError::input(std::path::Path::new(what), e);
    let config = config(&args).map_err(CliError::Usage)?;
    let worker = {
        let vault = args.vault.open(Default::default(), true, &mut std::io::stderr())?.into_boxed();
        Worker::spawn(vault, &crate::vault::actor(), cardveil_core::vault::CVV_HOLD)
            .map_err(|e| io("tokenization worker", e))?
    };
    let first = Obj::event("relay").str("ports", args.ports).int("threads", config.threads as i64).str(
        "media",
        &config.interfaces.iter().map(|i| format!("{}/{}", i.name, i.addr)).collect::<Vec<_>>().join(","),
    );
    let relay = NgRelay::start(args.ng, config, Some(worker)).map_err(|e| io("ng relay", e))?;
    let print = |out: &mut dyn std::io::Write, line: &str| {
        writeln!(out, "{line}").and_then(|()| out.flush()).map_err(|e| io("<stdout>", e))
    };
    print(out, &first.str("ng", &relay.addr.to_string()).finish())?;
    for line in &relay.lines {
        print(out, &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse() {
        assert_eq!(parse_ports("30000-39999"), Ok((30000, 39999)));
        assert_eq!(parse_ports(" 2000 - 2010 "), Ok((2000, 2010)));
        for bad in ["30000", "3-2", "5-5", "a-b", "1-70000"] {
            assert!(parse_ports(bad).is_err(), "{bad}");
        }
    }
}
