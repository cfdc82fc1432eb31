//! The SDP a media proxy touches (RFC 4566): where each media stream is
//! sent (`c=`, `m=`, `a=rtcp`), read from an offer or answer and rewritten
//! to point at the relay. Every other line stays exactly as it was, line
//! endings included.

use std::net::IpAddr;

/// One `m=` section as the endpoint sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub kind: String,
    /// Its RTP port (0: the stream is rejected).
    pub port: u16,
    /// Where it is sent: the media's `c=`, else the session's.
    pub addr: Option<IpAddr>,
    /// The `m=` line's transport, e.g. `RTP/AVP`.
    pub proto: String,
    /// Its formats (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Its `a=rtcp` port, if given (else RTCP goes to `port + 1`).
    pub rtcp: Option<u16>,
    /// The payload type of its `a=rtpmap:N telephone-event/8000`, if any.
    pub telephone_event: Option<u8>,
}

/// What to change besides `c=`, `m=` and `a=rtcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewrite {
    /// `replace: origin`: the `o=` line's address too.
    pub origin: bool,
    /// `ICE: remove`: drop the ICE attributes (candidates, ufrag, pwd,
    /// options, lite, end-of-candidates).
    pub remove_ice: bool,
}

/// Why an SDP body cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// A line is not `x=value`.
    #[error("SDP line {0} is not of the form x=value")]
    Line(usize),
    /// An `m=`, `c=` or `o=` line does not parse.
    #[error("SDP line {0}: malformed {1}= line")]
    Field(usize, char),
    /// No `m=` line.
    #[error("SDP has no media")]
    NoMedia,
    /// Fewer relay ports than media.
    #[error("SDP has {0} media, {1} relay ports given")]
    Ports(usize, usize),
}

fn lines(sdp: &str) -> impl Iterator<Item = (&str, &str)> {
    // Each line with its own ending ("\r\n", "\n" or none at the end).
    sdp.split_inclusive('\n').map(|l| {
        let body = l.trim_end_matches(['\r', '\n']);
        (body, &l[body.len()..])
    })
}

fn connection(value: &str) -> Option<IpAddr> {
    // c=IN IP4 192.0.2.1 (a multicast "/ttl" suffix is kept out).
    let mut f = value.split_whitespace();
    let (net, family, addr) = (f.next()?, f.next()?, f.next()?);
    let addr = addr.split('/').next()?;
    (net == "IN" && matches!(family, "IP4" | "IP6")).then(|| addr.parse().ok()).flatten()
}

/// The media of `sdp`, in order.
///
/// # Errors
/// [`SdpError`] for a malformed line or no media.
pub fn parse(sdp: &str) -> Result<Vec<Media>, SdpError> {
    let mut session_addr = None;
    let mut media: Vec<Media> = Vec::new();
    for (n, (line, _)) in lines(sdp).enumerate().map(|(i, l)| (i + 1, l)) {
        if line.is_empty() {
            continue;
        }
        let (kind, value) = split(line).ok_or(SdpError::Line(n))?;
        match kind {
            'm' => {
                let mut f = value.split_whitespace();
                let (Some(k), Some(port), Some(proto)) = (f.next(), f.next(), f.next()) else {
                    return Err(SdpError::Field(n, 'm'));
                };
                let port = port.split('/').next().and_then(|p| p.parse().ok()).ok_or(SdpError::Field(n, 'm'))?;
                media.push(Media {
                    kind: k.to_owned(),
                    port,
                    addr: session_addr,
                    proto: proto.to_owned(),
                    formats: f.map(str::to_owned).collect(),
                    rtcp: None,
                    telephone_event: None,
                });
            }
            'c' => {
                let addr = connection(value).ok_or(SdpError::Field(n, 'c'))?;
                match media.last_mut() {
                    Some(m) => m.addr = Some(addr),
                    None => session_addr = Some(addr),
                }
            }
            'a' => {
                let Some(m) = media.last_mut() else { continue };
                if let Some(rtcp) = value.strip_prefix("rtcp:") {
                    let port = rtcp.split_whitespace().next().and_then(|p| p.parse().ok());
                    m.rtcp = Some(port.ok_or(SdpError::Field(n, 'a'))?);
                } else if let Some(map) = value.strip_prefix("rtpmap:")
                    && let Some((pt, codec)) = map.split_once(' ')
                    && codec.trim().eq_ignore_ascii_case("telephone-event/8000")
                {
                    m.telephone_event = Some(pt.parse().map_err(|_| SdpError::Field(n, 'a'))?);
                }
            }
            _ => {}
        }
    }
    if media.is_empty() {
        return Err(SdpError::NoMedia);
    }
    Ok(media)
}

fn split(line: &str) -> Option<(char, &str)> {
    let mut c = line.chars();
    let kind = c.next()?;
    (kind.is_ascii_lowercase() && c.next() == Some('=')).then(|| (kind, &line[2..]))
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "IP4" } else { "IP6" }
}

const ICE: [&str; 6] = ["candidate", "ice-ufrag", "ice-pwd", "ice-options", "ice-lite", "end-of-candidates"];

/// `sdp` with every `c=` line pointing at `addr`, the i-th `m=` line's port
/// set to `ports[i]` (a rejected stream, port 0, stays 0) and its
/// `a=rtcp` to `ports[i] + 1` at `addr`; the rest as [`Rewrite`] says.
///
/// # Errors
/// [`SdpError`] for a malformed body, or fewer ports than media.
pub fn rewrite(sdp: &str, addr: IpAddr, ports: &[u16], how: Rewrite) -> Result<String, SdpError> {
    let media = parse(sdp)?;
    if ports.len() < media.len() {
        return Err(SdpError::Ports(media.len(), ports.len()));
    }
    let mut out = String::with_capacity(sdp.len() + 64);
    let mut index: Option<usize> = None;
    for (line, end) in lines(sdp) {
        let Some((kind, value)) = split(line) else {
            out.push_str(line);
            out.push_str(end);
            continue;
        };
        match kind {
            'm' => {
                let i = index.map_or(0, |i| i + 1);
                index = Some(i);
                let (k, rest) = value.split_once(' ').unwrap_or((value, ""));
                let (_, after_port) = rest.split_once(' ').unwrap_or((rest, ""));
                let port = if media[i].port == 0 { 0 } else { ports[i] };
                out.push_str(&format!("m={k} {port} {after_port}"));
            }
            'c' => out.push_str(&format!("c=IN {} {addr}", family(addr))),
            'o' if how.origin => {
                // o=<username> <sess-id> <sess-version> IN IP4 <address>
                let f: Vec<&str> = value.split_whitespace().collect();
                if f.len() == 6 {
                    out.push_str(&format!("o={} {} {} IN {} {addr}", f[0], f[1], f[2], family(addr)));
                } else {
                    out.push_str(line);
                }
            }
            'a' if value.starts_with("rtcp:") => {
                let port = index.map_or(0, |i| if media[i].port == 0 { 0 } else { ports[i].wrapping_add(1) });
                out.push_str(&format!("a=rtcp:{port} IN {} {addr}", family(addr)));
            }
            'a' if how.remove_ice && ICE.iter().any(|a| value.split(':').next() == Some(a)) => continue,
            _ => out.push_str(line),
        }
        out.push_str(end);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 198.51.100.1\r\n\
s=call\r\n\
c=IN IP4 198.51.100.1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=rtcp:49171 IN IP4 198.51.100.1\r\n\
a=ice-ufrag:F7gI\r\n\
a=candidate:1 1 UDP 2130706431 198.51.100.1 49170 typ host\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 96\r\n\
c=IN IP6 2001:db8::1\r\n";

    #[test]
    fn media_are_read_with_their_addresses() {
        let m = parse(OFFER).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].kind.as_str(), m[0].port, m[0].proto.as_str()), ("audio", 49170, "RTP/AVP"));
        assert_eq!(m[0].addr, Some("198.51.100.1".parse().unwrap()));
        assert_eq!(m[0].formats, ["0", "8", "101"]);
        assert_eq!((m[0].rtcp, m[0].telephone_event), (Some(49171), Some(101)));
        assert_eq!((m[1].rtcp, m[1].telephone_event), (None, None));
        assert_eq!((m[1].port, m[1].addr), (0, Some("2001:db8::1".parse().unwrap())));
    }

    #[test]
    fn only_the_addresses_change_and_every_other_line_stays() {
        let relay: IpAddr = "127.0.0.1".parse().unwrap();
        let out = rewrite(OFFER, relay, &[30000, 30002], Rewrite::default()).unwrap();
        let want = OFFER
            .replace("c=IN IP4 198.51.100.1", "c=IN IP4 127.0.0.1")
            .replace("m=audio 49170", "m=audio 30000")
            .replace("a=rtcp:49171 IN IP4 198.51.100.1", "a=rtcp:30001 IN IP4 127.0.0.1")
            .replace("c=IN IP6 2001:db8::1", "c=IN IP4 127.0.0.1");
        assert_eq!(out, want, "the origin, ICE and the rejected video's port 0 are untouched");
        let ice = rewrite(OFFER, relay, &[30000, 30002], Rewrite { origin: true, remove_ice: true }).unwrap();
        assert!(!ice.contains("ice-ufrag") && !ice.contains("candidate"), "{ice}");
        assert!(ice.contains("o=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\n"), "{ice}");
        assert!(ice.contains("a=sendrecv\r\n") && ice.contains("a=rtpmap:101 telephone-event/8000\r\n"));
    }

    #[test]
    fn bare_newlines_are_kept_and_bad_bodies_refused() {
        let lf = "v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\n";
        let out = rewrite(lf, "::1".parse().unwrap(), &[5000], Rewrite::default()).unwrap();
        assert_eq!(out, "v=0\nc=IN IP6 ::1\nm=audio 5000 RTP/AVP 0\n");
        assert_eq!(parse("v=0\r\n"), Err(SdpError::NoMedia));
        assert_eq!(parse("v=0\r\nm=audio x RTP/AVP 0\r\n"), Err(SdpError::Field(2, 'm')));
        assert_eq!(parse("v=0\r\nc=IN IP4 nowhere\r\nm=audio 1 RTP/AVP 0\r\n"), Err(SdpError::Field(2, 'c')));
        assert_eq!(parse("v=0\r\nbogus\r\n"), Err(SdpError::Line(2)));
        assert_eq!(parse("v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:x\r\n"), Err(SdpError::Field(3, 'a')));
        assert_eq!(rewrite(lf, "::1".parse().unwrap(), &[], Rewrite::default()), Err(SdpError::Ports(1, 0)));
    }
}
