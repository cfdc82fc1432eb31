//! The CVV's only home: memory, for the payment step. Each CVV is held
//! against the PAN's token, handed out once, and wiped when taken, when
//! its TTL passes or when the holder is dropped. It is never written
//! anywhere.

use std::time::{Duration, Instant};

use zeroize::Zeroize;

use crate::capture::Cvv;

/// CVVs waiting for the payment step. Fixed capacity; `Debug` shows how
/// many are held.
pub struct CvvHolder {
    slots: Vec<Slot>,
    ttl: Duration,
}

/// A slot's CVV buffer stays where it is: CVVs are copied in and out
/// digit by digit, so no stale copy is left behind by a move.
#[derive(Default)]
struct Slot {
    token: String,
    cvv: Cvv,
    deadline: Option<Instant>,
}

impl Slot {
    fn matches(&self, token: &str) -> bool {
        self.deadline.is_some() && self.token == token
    }

    fn wipe(&mut self) {
        self.cvv.zeroize();
        self.token.clear();
        self.deadline = None;
    }
}

impl std::fmt::Debug for CvvHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CvvHolder({} held, ttl {:?})", self.len(), self.ttl)
    }
}

impl CvvHolder {
    /// Room for `capacity` CVVs, each kept at most `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> CvvHolder {
        CvvHolder { slots: (0..capacity.max(1)).map(|_| Slot::default()).collect(), ttl }
    }

    /// Copies `cvv` in for `token` from `now` (replacing one held for the
    /// same token) and wipes `cvv`. Returns false if every slot holds an
    /// unexpired CVV (the CVV is wiped all the same).
    pub fn hold(&mut self, token: &str, cvv: &mut Cvv, now: Instant) -> bool {
        self.sweep(now);
        let slot = match self.slots.iter().position(|s| s.matches(token)) {
            Some(i) => Some(i),
            None => self.slots.iter().position(|s| s.deadline.is_none()),
        };
        let held = match slot {
            Some(i) => {
                let s = &mut self.slots[i];
                s.cvv.0.copy_from(&cvv.0);
                s.token.clear();
                s.token.push_str(token);
                s.deadline = Some(now + self.ttl);
                true
            }
            None => false,
        };
        cvv.zeroize();
        held
    }

    /// Copies the CVV held for `token` into `out` and wipes the slot (single
    /// use). False if there is none or its TTL has passed.
    pub fn take_into(&mut self, token: &str, out: &mut Cvv, now: Instant) -> bool {
        self.sweep(now);
        let Some(s) = self.slots.iter_mut().find(|s| s.matches(token)) else { return false };
        out.0.copy_from(&s.cvv.0);
        s.wipe();
        true
    }

    /// Wipes every CVV whose TTL has passed; returns how many.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let mut n = 0;
        for s in &mut self.slots {
            if s.deadline.is_some_and(|d| d <= now) {
                s.wipe();
                n += 1;
            }
        }
        n
    }

    /// How many are held (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.deadline.is_some()).count()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cvv(s: &[u8]) -> Cvv {
        Cvv::from_ascii(s).unwrap()
    }

    #[test]
    fn single_use_short_lived_bounded() {
        let t0 = Instant::now();
        let mut h = CvvHolder::new(2, Duration::from_secs(60));
        let mut c = cvv(b"123");
        assert!(h.hold("tok_a", &mut c, t0));
        assert!(c.is_empty(), "the source is wiped");
        let mut out = Cvv::default();
        assert!(h.take_into("tok_a", &mut out, t0));
        assert_eq!(out.expose(), &[1, 2, 3]);
        assert!(!h.take_into("tok_a", &mut out, t0), "single use");
        assert!(h.hold("tok_b", &mut cvv(b"456"), t0));
        assert!(h.hold("tok_c", &mut cvv(b"789"), t0));
        assert!(!h.hold("tok_d", &mut cvv(b"000"), t0), "full");
        assert!(h.hold("tok_b", &mut cvv(b"4567"), t0), "same token replaces");
        assert_eq!(h.len(), 2);
        let later = t0 + Duration::from_secs(61);
        assert!(!h.take_into("tok_b", &mut out, later), "expired");
        assert!(h.is_empty());
        assert!(h.slots.iter().all(|s| s.cvv.is_empty() && s.token.is_empty()));
        assert_eq!(format!("{h:?}"), "CvvHolder(0 held, ttl 60s)");
    }
}
