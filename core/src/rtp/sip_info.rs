//! DTMF in SIP INFO bodies: `application/dtmf-relay` (`Signal=5` and
//! `Duration=160` lines) and `application/dtmf` (the key alone). Parsed
//! into the same keys as telephone-events, and rewritten so the forwarded
//! body no longer carries the key: every key becomes one fixed key, the
//! rest of the body (duration, other lines, line endings) is kept.

use crate::dtmf::Key;

/// A key found in a SIP INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoKey {
    /// The key.
    pub key: Key,
    /// `Duration=` in ms, if given.
    pub duration_ms: Option<u32>,
}

/// The two body types.
fn is_relay(content_type: &str) -> Option<bool> {
    let t = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match t.as_str() {
        "application/dtmf-relay" => Some(true),
        "application/dtmf" => Some(false),
        _ => None,
    }
}

/// A key from a `Signal` value: `0`–`9`, `*`, `#`, `A`–`D`, or the event
/// codes 10–15 some devices send for `*`, `#`, `A`–`D`.
fn signal_key(v: &str) -> Option<Key> {
    let v = v.trim();
    let c = match v {
        "10" => '*',
        "11" => '#',
        "12" => 'A',
        "13" => 'B',
        "14" => 'C',
        "15" => 'D',
        _ if v.chars().count() == 1 => v.chars().next()?,
        _ => return None,
    };
    Key::from_char(c)
}

/// The key of a SIP INFO body of `content_type`, if it carries one.
pub fn parse_info(content_type: &str, body: &str) -> Option<InfoKey> {
    if !is_relay(content_type)? {
        return Some(InfoKey { key: signal_key(body)?, duration_ms: None });
    }
    let mut key = None;
    let mut duration_ms = None;
    for line in body.lines() {
        let Some((name, value)) = line.split_once('=') else { continue };
        match name.trim().to_ascii_lowercase().as_str() {
            "signal" => key = signal_key(value),
            "duration" => duration_ms = value.trim().parse().ok(),
            _ => {}
        }
    }
    Some(InfoKey { key: key?, duration_ms })
}

/// The body with its key replaced by `fixed` (say `'0'`, the same for every
/// key), or `None` if it carries no key (forward it unchanged). The length
/// may change (a `Signal=10` becomes one character): update Content-Length.
pub fn rewrite_info(content_type: &str, body: &str, fixed: Key) -> Option<String> {
    parse_info(content_type, body)?;
    let fixed = fixed.as_char();
    if !is_relay(content_type)? {
        let start = body.len() - body.trim_start().len();
        let end = body.trim_end().len();
        return Some(format!("{}{fixed}{}", &body[..start], &body[end..]));
    }
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        match line.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("signal") => {
                let ending = &value[value.trim_end().len()..];
                let lead = &value[..value.len() - value.trim_start().len()];
                out.push_str(name);
                out.push('=');
                out.push_str(lead);
                out.push(fixed);
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    Some(out)
}

/// A SIP INFO request whose DTMF body was rewritten by [`rewrite_message`].
#[derive(Clone, PartialEq, Eq)]
pub struct RewrittenInfo {
    /// The key the original body carried. For capture: never print it.
    pub key: InfoKey,
    /// The whole message with the body's key replaced and Content-Length
    /// (if present) updated.
    pub message: Vec<u8>,
}

impl std::fmt::Debug for RewrittenInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewrittenInfo").field("message_len", &self.message.len()).finish_non_exhaustive()
    }
}

/// A whole SIP message (as one UDP datagram carries it): if it is an INFO
/// request with an `application/dtmf-relay` or `application/dtmf` body
/// carrying a key, the message with that key replaced by `fixed` and its
/// `Content-Length` (or compact `l:`) rewritten to the new body length.
/// `None` for anything else (forward it unchanged). Headers and their
/// order, line endings and other body lines are kept.
pub fn rewrite_message(message: &[u8], fixed: Key) -> Option<RewrittenInfo> {
    let (head_len, sep) = info_head(message)?;
    let head = std::str::from_utf8(&message[..head_len]).ok()?;
    let mut body = &message[head_len + sep..];
    let mut content_type = None;
    let mut length_lines = Vec::new();
    let mut length = None;
    for (i, name, value) in headers(head) {
        match name.as_str() {
            "content-type" | "c" => content_type = Some(value.trim()),
            "content-length" | "l" => {
                let n: usize = value.trim().parse().ok()?;
                // The first one counts; every one is rewritten.
                length.get_or_insert(n);
                length_lines.push(i);
            }
            _ => {}
        }
    }
    if let Some(n) = length {
        body = body.get(..n)?;
    }
    let text = std::str::from_utf8(body).ok()?;
    let key = parse_info(content_type?, text)?;
    let new_body = rewrite_info(content_type?, text, fixed)?;
    let mut out = Vec::with_capacity(message.len() + 4);
    for (i, line) in head.split_inclusive('\n').enumerate() {
        match (length_lines.contains(&i), line.split_once(':')) {
            (true, Some((name, value))) => {
                let ending = &value[value.trim_end().len()..];
                let lead = &value[..value.len() - value.trim_start().len()];
                out.extend_from_slice(format!("{name}:{lead}{}{ending}", new_body.len()).as_bytes());
            }
            _ => out.extend_from_slice(line.as_bytes()),
        }
    }
    out.extend_from_slice(&message[head_len..head_len + sep]);
    out.extend_from_slice(new_body.as_bytes());
    Some(RewrittenInfo { key, message: out })
}

/// The fallback for an INFO request [`rewrite_message`] cannot rewrite
/// whole — cut short by a capture's snap length, or with a Content-Length
/// that does not fit — but whose head names a DTMF body type: the key is
/// overwritten in place, nothing moves. In an `application/dtmf-relay`
/// body every `Signal` value (up to its line end or the end of the bytes)
/// becomes `fixed`; in an `application/dtmf` body every visible character
/// does. Returns whether anything could hold a key (false: not a DTMF INFO,
/// or no body captured).
pub fn scrub_message_in_place(message: &mut [u8], fixed: Key) -> bool {
    let Some((head_len, sep)) = info_head(message) else { return false };
    let head = String::from_utf8_lossy(&message[..head_len]).into_owned();
    // The last Content-Type (or compact `c:`) header, as rewrite_message reads it.
    let content_type = headers(&head)
        .filter(|(_, name, _)| matches!(name.as_str(), "content-type" | "c"))
        .map(|(_, _, value)| value.trim())
        .last();
    let Some(relay) = content_type.and_then(is_relay) else { return false };
    let f = fixed.as_char() as u8;
    let body = &mut message[head_len + sep..];
    if !relay {
        body.iter_mut().filter(|b| b.is_ascii_graphic()).for_each(|b| *b = f);
        return true;
    }
    let mut at = 0;
    while at < body.len() {
        let end = body[at..].iter().position(|&b| b == b'\n').map_or(body.len(), |p| at + p);
        let line = &mut body[at..end];
        let is_signal = line
            .iter()
            .position(|&b| b == b'=')
            .filter(|&eq| String::from_utf8_lossy(&line[..eq]).trim().eq_ignore_ascii_case("signal"));
        if let Some(eq) = is_signal {
            line[eq + 1..].iter_mut().filter(|b| b.is_ascii_graphic()).for_each(|b| *b = f);
        }
        at = end + 1;
    }
    true
}

/// Where the head of an INFO request ends: its length and the blank
/// line's (CRLF or bare LF); `None` if not an INFO or no blank line.
fn info_head(message: &[u8]) -> Option<(usize, usize)> {
    if !message.starts_with(b"INFO ") {
        return None;
    }
    find(message, b"\r\n\r\n").map(|i| (i, 4)).or_else(|| find(message, b"\n\n").map(|i| (i, 2)))
}

/// The header lines of a head after its request line: line index (counted
/// in `head.split('\n')`), lower-cased name, raw value.
fn headers(head: &str) -> impl Iterator<Item = (usize, String, &str)> {
    head.split('\n').enumerate().skip(1).filter_map(|(i, line)| {
        let (name, value) = line.split_once(':')?;
        Some((i, name.trim().to_ascii_lowercase(), value))
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> Key {
        Key::from_char(c).unwrap()
    }

    #[test]
    fn dtmf_relay_and_dtmf_bodies() {
        let body = "Signal=5\r\nDuration=160\r\n";
        assert_eq!(parse_info("application/dtmf-relay", body), Some(InfoKey { key: key('5'), duration_ms: Some(160) }));
        assert_eq!(
            parse_info("Application/DTMF-Relay; charset=utf-8", "signal= #\nduration=250"),
            Some(InfoKey { key: key('#'), duration_ms: Some(250) })
        );
        assert_eq!(parse_info("application/dtmf-relay", "Signal=11\r\nDuration=100\r\n").unwrap().key, key('#'));
        assert_eq!(parse_info("application/dtmf", "7\r\n"), Some(InfoKey { key: key('7'), duration_ms: None }));
        assert_eq!(parse_info("application/dtmf", "*"), Some(InfoKey { key: key('*'), duration_ms: None }));
        assert_eq!(parse_info("application/sdp", "Signal=5"), None);
        assert_eq!(parse_info("application/dtmf-relay", "Duration=160\r\n"), None);
        assert_eq!(parse_info("application/dtmf-relay", "Signal=x\r\n"), None);
        assert_eq!(parse_info("application/dtmf", "55"), None);

        assert_eq!(rewrite_info("application/dtmf-relay", body, key('0')).unwrap(), "Signal=0\r\nDuration=160\r\n");
        assert_eq!(
            rewrite_info("application/dtmf-relay", "Signal= 11\nDuration=90", key('0')).unwrap(),
            "Signal= 0\nDuration=90"
        );
        assert_eq!(rewrite_info("application/dtmf", " 9\r\n", key('0')).unwrap(), " 0\r\n");
        assert_eq!(rewrite_info("application/sdp", "v=0", key('0')), None);
        // Every key gives the same body.
        for k in Key::ALL {
            let b = format!("Signal={}\r\nDuration=160\r\n", k.as_char());
            assert_eq!(rewrite_info("application/dtmf-relay", &b, key('0')).unwrap(), "Signal=0\r\nDuration=160\r\n");
        }
    }

    #[test]
    fn a_cut_message_is_scrubbed_in_place() {
        let msg =
            "INFO sip:a SIP/2.0\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 25\r\n\r\nSignal=11\r\nDura";
        let mut cut = msg.as_bytes().to_vec();
        assert_eq!(rewrite_message(&cut, key('D')), None, "the body is cut short");
        assert!(scrub_message_in_place(&mut cut, key('D')));
        assert!(String::from_utf8(cut).unwrap().ends_with("\r\n\r\nSignal=DD\r\nDura"));
        let mut cut = b"INFO sip:a SIP/2.0\nc: application/dtmf\nl: 9\n\n 7".to_vec();
        assert!(scrub_message_in_place(&mut cut, key('D')));
        assert!(cut.ends_with(b"\n\n D"));
        let mut sdp = b"INFO sip:a SIP/2.0\r\nContent-Type: application/sdp\r\n\r\nv=0".to_vec();
        assert!(!scrub_message_in_place(&mut sdp, key('D')));
        assert!(!scrub_message_in_place(
            &mut b"INFO sip:a SIP/2.0\r\nContent-Type: application/dtmf".to_vec(),
            key('D')
        ));
    }

    #[test]
    fn whole_info_messages_are_rewritten_with_their_length() {
        let msg = "INFO sip:agent@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061\r\nCall-ID: a@b\r\n\
                   CSeq: 3 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 25\r\n\r\n\
                   Signal=11\r\nDuration=160\r\n";
        let r = rewrite_message(msg.as_bytes(), key('0')).unwrap();
        assert_eq!(r.key, InfoKey { key: key('#'), duration_ms: Some(160) });
        let out = String::from_utf8(r.message.clone()).unwrap();
        assert!(out.ends_with("Content-Length: 24\r\n\r\nSignal=0\r\nDuration=160\r\n"), "{out}");
        assert!(out.starts_with("INFO sip:agent@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061\r\n"));
        assert!(!format!("{r:?}").contains('#'));
        // Compact headers, bare LF, application/dtmf.
        let compact = "INFO sip:a SIP/2.0\nc: application/dtmf\nl: 1\n\n7";
        let r = rewrite_message(compact.as_bytes(), key('0')).unwrap();
        assert_eq!(r.key.key, key('7'));
        assert_eq!(r.message, b"INFO sip:a SIP/2.0\nc: application/dtmf\nl: 1\n\n0");
        // Not INFO, no DTMF body, a short body, no headers end: unchanged.
        for m in [
            "INVITE sip:a SIP/2.0\r\nContent-Type: application/dtmf\r\nContent-Length: 1\r\n\r\n7",
            "INFO sip:a SIP/2.0\r\nContent-Type: application/sdp\r\nContent-Length: 3\r\n\r\nv=0",
            "INFO sip:a SIP/2.0\r\nContent-Type: application/dtmf\r\nContent-Length: 9\r\n\r\n7",
            "INFO sip:a SIP/2.0\r\nContent-Type: application/dtmf",
        ] {
            assert_eq!(rewrite_message(m.as_bytes(), key('0')), None, "{m}");
        }
    }
}
