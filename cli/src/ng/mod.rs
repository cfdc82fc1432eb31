//! rtpengine's "ng" control protocol, the pieces that do not depend on the
//! media engine: a datagram is `COOKIE SP BENCODED-DICT` and its reply
//! `COOKIE SP BENCODED-DICT` with the same cookie; a retransmitted request
//! (same cookie) gets the cached reply, not a second execution. Every reply
//! has `result` (`ok`, `pong` or `error`); an error has `error-reason` and
//! nothing else. See rtpengine's `docs/ng_control_protocol.md`.
//!
//! [`bencode`] is the document format, [`sdp`] the offer/answer rewriting,
//! [`Server::handle`] one datagram in, one reply out (commands past `ping`
//! go to the [`Commands`] the relay implements).

pub mod bencode;
pub mod engine;
pub mod media;
pub mod sdp;
pub mod serve;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bencode::Value;

/// Largest ng datagram taken (the module sends whole SDP bodies; UDP
/// datagrams on loopback carry up to 64 KiB).
pub const MAX_DATAGRAM: usize = 65_535;

/// Longest cookie taken (the Kamailio module sends `PID_SEQ`).
pub const MAX_COOKIE: usize = 64;

/// How long a reply is kept for retransmissions (the module retries for a
/// few seconds).
pub const REPLY_TTL: Duration = Duration::from_secs(30);

/// How many replies are kept at most (the oldest go first).
pub const REPLY_CACHE: usize = 4096;

/// An ng reply: `{result: ok, …}`, `{result: pong}` or an error.
pub type Reply = Value;

/// An error reply: `result: error` and `error-reason`, nothing else.
pub fn error(reason: &str) -> Reply {
    Value::Dict(vec![(b"result".to_vec(), Value::str("error")), (b"error-reason".to_vec(), Value::str(reason))])
}

/// An `ok` reply with `fields`.
pub fn ok(fields: Vec<(&str, Value)>) -> Reply {
    let mut d = vec![(b"result".to_vec(), Value::str("ok"))];
    d.extend(fields.into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v)));
    Value::Dict(d)
}

/// The commands past `ping`, carried out by the relay. Each gets the
/// request's dictionary and answers with a [`Reply`] (an [`error`] for
/// what it refuses).
pub trait Commands {
    /// `command` with its request `body` (a dictionary). Unknown commands
    /// answer `error` with "unknown command".
    fn run(&mut self, command: &str, body: &Value) -> Reply;
}

/// rtpengine's `DTMF-security` modes, as cardveil carries them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSecurity {
    /// Key presses replaced by silence (cardveil's default).
    Silence,
    /// By one flat tone, the same for every key.
    Tone,
    /// By zero samples (as silence: G.711's zero level).
    Zero,
    /// Telephone-events rewritten to this key's event code (0–15), in-band
    /// audio silenced.
    Digit(u8),
    /// Telephone-events dropped, in-band audio silenced.
    Drop,
    /// Nothing masked: only when the relay's configuration allows it.
    Off,
}

impl DtmfSecurity {
    /// From the request's `DTMF-security` (and `digit`, for `DTMF`).
    ///
    /// # Errors
    /// A reason for the error reply: `random` is refused (random keys fool
    /// recorders' detectors into logging fake digits), unknown names too,
    /// and `DTMF` needs a `digit` that is a key.
    pub fn parse(mode: &str, digit: Option<&str>) -> Result<DtmfSecurity, String> {
        Ok(match mode {
            "silence" => DtmfSecurity::Silence,
            "tone" => DtmfSecurity::Tone,
            "zero" => DtmfSecurity::Zero,
            "drop" => DtmfSecurity::Drop,
            "off" => DtmfSecurity::Off,
            "DTMF" => {
                let d = digit.ok_or("DTMF-security=DTMF needs a digit")?;
                let code = match d.as_bytes() {
                    [c @ b'0'..=b'9'] => c - b'0',
                    [b'*'] => 10,
                    [b'#'] => 11,
                    [c @ b'A'..=b'D'] => 12 + (c - b'A'),
                    _ => return Err(format!("digit {d:?} is not a DTMF key")),
                };
                DtmfSecurity::Digit(code)
            }
            "random" => {
                return Err("DTMF-security=random is refused: random keys reach recorders as fake digits".into());
            }
            other => return Err(format!("unknown DTMF-security {other:?}")),
        })
    }
}

/// The ng control endpoint's state: the reply cache.
#[derive(Debug)]
pub struct Server {
    replies: VecDeque<(Vec<u8>, Vec<u8>, Instant)>,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// An endpoint with an empty reply cache.
    pub fn new() -> Server {
        Server { replies: VecDeque::new() }
    }

    /// One request datagram in, its reply datagram out (`None`: no reply —
    /// the datagram has no cookie to answer to). A retransmission gets the
    /// first reply again without running the command twice.
    pub fn handle(&mut self, datagram: &[u8], now: Instant, commands: &mut dyn Commands) -> Option<Vec<u8>> {
        let space = datagram.iter().position(|&b| b == b' ')?;
        let cookie = &datagram[..space];
        if cookie.is_empty() || cookie.len() > MAX_COOKIE || !cookie.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        while self.replies.front().is_some_and(|(_, _, at)| now.duration_since(*at) > REPLY_TTL) {
            self.replies.pop_front();
        }
        if let Some((_, reply, _)) = self.replies.iter().find(|(c, _, _)| c == cookie) {
            return Some(reply.clone());
        }
        let body = &datagram[space + 1..];
        let reply = if datagram.len() > MAX_DATAGRAM {
            error("message too large")
        } else {
            match Value::decode(body) {
                Err(e) => error(&e.to_string()),
                Ok(request) => match request.get("command").and_then(Value::as_str) {
                    None => error("no command"),
                    Some("ping") => Value::Dict(vec![(b"result".to_vec(), Value::str("pong"))]),
                    Some(command) => commands.run(command, &request),
                },
            }
        };
        let mut out = Vec::with_capacity(cookie.len() + 64);
        out.extend_from_slice(cookie);
        out.push(b' ');
        reply.encode_into(&mut out);
        if self.replies.len() >= REPLY_CACHE {
            self.replies.pop_front();
        }
        self.replies.push_back((cookie.to_vec(), out.clone(), now));
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts what it runs; knows only `list`.
    #[derive(Default)]
    struct Counting(usize);

    impl Commands for Counting {
        fn run(&mut self, command: &str, _: &Value) -> Reply {
            self.0 += 1;
            match command {
                "list" => ok(vec![("calls", Value::List(Vec::new()))]),
                _ => error("unknown command"),
            }
        }
    }

    #[test]
    fn ping_is_pong_and_replies_carry_the_cookie() {
        let mut s = Server::new();
        let mut c = Counting::default();
        let now = Instant::now();
        assert_eq!(s.handle(b"5323_1 d7:command4:pinge", now, &mut c).unwrap(), b"5323_1 d6:result4:ponge");
        let list = s.handle(b"7_2 d7:command4:liste", now, &mut c).unwrap();
        assert_eq!(list, b"7_2 d5:callsle6:result2:oke");
        let unknown = s.handle(b"7_3 d7:command5:fancye", now, &mut c).unwrap();
        assert_eq!(unknown, b"7_3 d12:error-reason15:unknown command6:result5:errore");
        assert_eq!(c.0, 2, "ping is answered here");
    }

    #[test]
    fn retransmissions_get_the_same_reply_without_running_again() {
        let mut s = Server::new();
        let mut c = Counting::default();
        let t0 = Instant::now();
        let first = s.handle(b"9_1 d7:command4:liste", t0, &mut c).unwrap();
        let again = s.handle(b"9_1 d7:command4:liste", t0 + Duration::from_secs(2), &mut c).unwrap();
        assert_eq!((first, c.0), (again, 1));
        // Once the reply has expired the cookie is a new request.
        s.handle(b"9_1 d7:command4:liste", t0 + REPLY_TTL + Duration::from_secs(3), &mut c).unwrap();
        assert_eq!(c.0, 2);
    }

    #[test]
    fn malformed_requests_get_an_error_or_no_reply() {
        let mut s = Server::new();
        let mut c = Counting::default();
        let now = Instant::now();
        let reply = |s: &mut Server, c: &mut Counting, d: &[u8]| {
            s.handle(d, now, c).map(|r| Value::decode(&r[r.iter().position(|&b| b == b' ').unwrap() + 1..]).unwrap())
        };
        for d in [&b"a d4:spam4:eggse"[..], b"b di1ei2ee", b"c notbencode", b"d l4:pinge"] {
            let r = reply(&mut s, &mut c, d).expect("an error reply");
            assert_eq!(r.get("result").and_then(Value::as_str), Some("error"), "{:?}", String::from_utf8_lossy(d));
            assert!(r.get("error-reason").is_some());
            assert_eq!(r.as_dict_len(), 2, "an error has nothing else");
        }
        assert!(s.handle(b"nocookie", now, &mut c).is_none());
        assert!(s.handle(b" d7:command4:pinge", now, &mut c).is_none());
        assert!(
            s.handle(&[b"x".repeat(MAX_COOKIE + 1), b" d7:command4:pinge".to_vec()].concat(), now, &mut c).is_none()
        );
        assert_eq!(c.0, 0);
    }

    #[test]
    fn dtmf_security_names_map_and_random_is_refused() {
        assert_eq!(DtmfSecurity::parse("silence", None), Ok(DtmfSecurity::Silence));
        assert_eq!(DtmfSecurity::parse("tone", None), Ok(DtmfSecurity::Tone));
        assert_eq!(DtmfSecurity::parse("zero", None), Ok(DtmfSecurity::Zero));
        assert_eq!(DtmfSecurity::parse("drop", None), Ok(DtmfSecurity::Drop));
        assert_eq!(DtmfSecurity::parse("off", None), Ok(DtmfSecurity::Off));
        assert_eq!(DtmfSecurity::parse("DTMF", Some("#")), Ok(DtmfSecurity::Digit(11)));
        assert_eq!(DtmfSecurity::parse("DTMF", Some("D")), Ok(DtmfSecurity::Digit(15)));
        assert!(DtmfSecurity::parse("DTMF", None).is_err());
        assert!(DtmfSecurity::parse("DTMF", Some("12")).is_err());
        assert!(DtmfSecurity::parse("random", None).unwrap_err().contains("refused"));
        assert!(DtmfSecurity::parse("loud", None).is_err());
    }

    impl Value {
        fn as_dict_len(&self) -> usize {
            match self {
                Value::Dict(d) => d.len(),
                _ => 0,
            }
        }
    }
}
