//! The audit trail: one record per vault operation — who, what, when,
//! which token, the outcome — and never card data. Records form a chain:
//! each one's tag covers its fields and the previous tag, and the store
//! keeps the head (last sequence number and tag) beside them, written in
//! the same transaction. Editing a record breaks its tag; removing or
//! inserting one breaks the sequence or the links; cutting records off the
//! end no longer matches the head.
//!
//! The chain is **keyed**: tags are HMAC-SHA256 under the vault's audit
//! key (random, sealed under every registered KEK, so writing a valid
//! record needs a KEK — whoever can only write the database cannot rebuild
//! the chain). Records written before a vault had an audit key carry plain
//! SHA-256 hashes; the sealed key says from which record on tags are
//! keyed, so none after it may be plain. A cut tail (with the stored head
//! rewritten to match) is found against an exported head
//! ([`Verifier::expect`]) that an operator keeps elsewhere.

use ring::{digest, hmac};

use super::VaultError;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// Who asked.
    pub actor: String,
    /// `tokenize`, `metadata`, `detokenize`, `delete`, `purge`, `rotate`.
    pub operation: String,
    /// The token concerned, if any.
    pub token: Option<String>,
    /// `ok`, `existing`, `not_found`, `expired`, `error: …`, `removed N`, ….
    pub outcome: String,
    /// The previous record's hash (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256 over the fields above.
    pub hash: [u8; 32],
}

/// The vault's audit key and the first sequence number tagged with it.
pub struct AuditKey {
    key: hmac::Key,
    keyed_from: u64,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(keyed from record {})", self.keyed_from)
    }
}

impl AuditKey {
    /// An audit key from its 32 bytes; records from `keyed_from` on are keyed.
    pub fn new(secret: &[u8; 32], keyed_from: u64) -> AuditKey {
        AuditKey { key: hmac::Key::new(hmac::HMAC_SHA256, secret), keyed_from }
    }

    /// The first keyed record.
    pub fn keyed_from(&self) -> u64 {
        self.keyed_from
    }
}

/// The length-prefixed encoding of a record's fields (no two different
/// records encode alike), fed to `update`.
#[allow(clippy::too_many_arguments)]
fn encode(
    update: &mut dyn FnMut(&[u8]),
    label: &[u8],
    seq: u64,
    at: i64,
    actor: &str,
    operation: &str,
    token: Option<&str>,
    outcome: &str,
    prev: &[u8; 32],
) {
    update(label);
    update(prev);
    update(&seq.to_be_bytes());
    update(&at.to_be_bytes());
    for field in [Some(actor), Some(operation), token, Some(outcome)] {
        match field {
            None => update(&[0]),
            Some(f) => {
                update(&[1]);
                update(&(f.len() as u64).to_be_bytes());
                update(f.as_bytes());
            }
        }
    }
}

/// A record's tag: HMAC-SHA256 under `key` for records from its
/// `keyed_from` on, plain SHA-256 (records written before the vault had a key) before.
#[allow(clippy::too_many_arguments)]
fn tag(
    key: Option<&AuditKey>,
    seq: u64,
    at: i64,
    actor: &str,
    operation: &str,
    token: Option<&str>,
    outcome: &str,
    prev: &[u8; 32],
) -> [u8; 32] {
    match key.filter(|k| seq >= k.keyed_from) {
        Some(k) => {
            let mut ctx = hmac::Context::with_key(&k.key);
            encode(&mut |b| ctx.update(b), b"cardveil audit v2", seq, at, actor, operation, token, outcome, prev);
            ctx.sign().as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
        }
        None => hash(seq, at, actor, operation, token, outcome, prev),
    }
}

/// The plain hash of a record's fields (records before the audit key).
fn hash(
    seq: u64,
    at: i64,
    actor: &str,
    operation: &str,
    token: Option<&str>,
    outcome: &str,
    prev: &[u8; 32],
) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    encode(&mut |b| ctx.update(b), b"cardveil audit v1", seq, at, actor, operation, token, outcome, prev);
    ctx.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// The record that follows `head`, tagged under `key`.
pub fn next(
    key: Option<&AuditKey>,
    head: (u64, [u8; 32]),
    at: i64,
    actor: &str,
    operation: &str,
    token: Option<&str>,
    outcome: &str,
) -> AuditRecord {
    let (seq, prev_hash) = (head.0 + 1, head.1);
    AuditRecord {
        seq,
        at,
        actor: actor.to_owned(),
        operation: operation.to_owned(),
        token: token.map(str::to_owned),
        outcome: outcome.to_owned(),
        prev_hash,
        hash: tag(key, seq, at, actor, operation, token, outcome, &prev_hash),
    }
}

/// Checks records against the chain, batch by batch.
#[derive(Debug, Default)]
pub struct Verifier<'a> {
    seq: u64,
    hash: [u8; 32],
    key: Option<&'a AuditKey>,
    expected: Option<(u64, [u8; 32])>,
}

impl<'a> Verifier<'a> {
    /// A verifier at the start of the chain (of a vault without an audit key).
    pub fn new() -> Verifier<'a> {
        Verifier::default()
    }

    /// A verifier of a keyed chain.
    pub fn keyed(key: &'a AuditKey) -> Verifier<'a> {
        Verifier { key: Some(key), ..Verifier::default() }
    }

    /// Also requires the chain to hold `head` (sequence number and tag), a
    /// head exported earlier and kept elsewhere: a cut tail, or a chain
    /// rebuilt from some record on, no longer holds it.
    pub fn expect(mut self, head: (u64, [u8; 32])) -> Verifier<'a> {
        self.expected = Some(head);
        self
    }

    /// Checks the next record.
    pub fn check(&mut self, r: &AuditRecord) -> Result<(), VaultError> {
        let broken = |what| Err(VaultError::AuditBroken { seq: r.seq, what });
        if r.seq != self.seq + 1 {
            return Err(VaultError::AuditBroken { seq: self.seq + 1, what: "record missing (sequence numbers jump)" });
        }
        if r.prev_hash != self.hash {
            return broken("link to the previous record does not match");
        }
        if tag(self.key, r.seq, r.at, &r.actor, &r.operation, r.token.as_deref(), &r.outcome, &r.prev_hash) != r.hash {
            return broken("record was altered or forged (its tag does not match its fields under the audit key)");
        }
        if self.expected.is_some_and(|(seq, tag)| seq == r.seq && tag != r.hash) {
            return broken("record differs from the exported head (the chain was rebuilt)");
        }
        self.seq = r.seq;
        self.hash = r.hash;
        Ok(())
    }

    /// After the last record: it must be the recorded head. Returns the
    /// number of records verified.
    pub fn finish(self, head: (u64, [u8; 32])) -> Result<u64, VaultError> {
        if head.0 != self.seq {
            return Err(VaultError::AuditBroken { seq: self.seq + 1, what: "records missing at the end" });
        }
        if head.1 != self.hash {
            return Err(VaultError::AuditBroken { seq: self.seq, what: "last record is not the recorded head" });
        }
        if let Some((seq, _)) = self.expected
            && seq > self.seq
        {
            return Err(VaultError::AuditBroken { seq: self.seq + 1, what: "records missing up to the exported head" });
        }
        Ok(self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> (Vec<AuditRecord>, (u64, [u8; 32])) {
        let mut head = (0, [0; 32]);
        let mut v = Vec::new();
        for i in 0..n {
            let r = next(None, head, 1000 + i as i64, "agent:7", "tokenize", Some("tok_x"), "ok");
            head = (r.seq, r.hash);
            v.push(r);
        }
        (v, head)
    }

    fn verify(records: &[AuditRecord], head: (u64, [u8; 32])) -> Result<u64, VaultError> {
        let mut v = Verifier::new();
        for r in records {
            v.check(r)?;
        }
        v.finish(head)
    }

    #[test]
    fn intact_chain_verifies_and_any_tampering_is_found() {
        let (records, head) = chain(5);
        assert_eq!(verify(&records, head).unwrap(), 5);
        assert_eq!(verify(&[], (0, [0; 32])).unwrap(), 0);

        let mut edited = records.clone();
        edited[2].outcome = "not_found".into();
        assert!(matches!(verify(&edited, head), Err(VaultError::AuditBroken { seq: 3, .. })));

        let mut removed = records.clone();
        removed.remove(1);
        assert!(matches!(verify(&removed, head), Err(VaultError::AuditBroken { seq: 2, .. })));

        // Cut the tail, even with the head rewritten to the new last seq.
        let cut = &records[..4];
        assert!(verify(cut, head).is_err());
        assert!(verify(cut, (4, head.1)).is_err());

        // Renumbering after a removal breaks the links.
        let mut renumbered = records.clone();
        renumbered.remove(1);
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        assert!(verify(&renumbered, (4, head.1)).is_err());

        // Fields are length-prefixed: moving text between fields changes the hash.
        let a = hash(1, 0, "ab", "c", None, "ok", &[0; 32]);
        let b = hash(1, 0, "a", "bc", None, "ok", &[0; 32]);
        assert_ne!(a, b);
        assert_ne!(hash(1, 0, "a", "b", None, "ok", &[0; 32]), hash(1, 0, "a", "b", Some(""), "ok", &[0; 32]));
    }

    #[test]
    fn a_keyed_chain_cannot_be_rebuilt_without_the_key_nor_cut_past_an_exported_head() {
        let key = AuditKey::new(&[7; 32], 3);
        let mut head = (0, [0; 32]);
        let mut records = Vec::new();
        for i in 0..6 {
            let r = next(Some(&key), head, 1000 + i, "agent:7", "detokenize", Some("tok_x"), "ok");
            head = (r.seq, r.hash);
            records.push(r);
        }
        let check = |v: Verifier<'_>, rs: &[AuditRecord], head| {
            let mut v = v;
            for r in rs {
                v.check(r)?;
            }
            v.finish(head)
        };
        assert_eq!(check(Verifier::keyed(&key), &records, head).unwrap(), 6);
        // Records 1 and 2 predate the key (plain hashes); 3… are keyed.
        assert!(check(Verifier::new(), &records, head).is_err(), "keyed tags are not plain hashes");
        // Rebuilt from record 4 on with plain hashes (all a database writer can do): found.
        let mut rebuilt = records[..3].to_vec();
        let mut h = (records[2].seq, records[2].hash);
        for i in 3..6 {
            let r = next(None, h, 2000 + i, "agent:7", "detokenize", None, "ok");
            h = (r.seq, r.hash);
            rebuilt.push(r);
        }
        assert!(matches!(check(Verifier::keyed(&key), &rebuilt, h), Err(VaultError::AuditBroken { seq: 4, .. })));
        // With another key: found too.
        let other = AuditKey::new(&[8; 32], 1);
        assert!(check(Verifier::keyed(&other), &records, head).is_err());
        // A tail cut with the stored head rewritten to match: only the exported head finds it.
        let cut = &records[..4];
        let cut_head = (cut[3].seq, cut[3].hash);
        assert_eq!(check(Verifier::keyed(&key), cut, cut_head).unwrap(), 4);
        let e = check(Verifier::keyed(&key).expect(head), cut, cut_head).unwrap_err();
        assert!(matches!(e, VaultError::AuditBroken { seq: 5, .. }), "{e:?}");
        // An exported head the chain has grown past still verifies; a wrong one does not.
        assert_eq!(check(Verifier::keyed(&key).expect((4, records[3].hash)), &records, head).unwrap(), 6);
        assert!(check(Verifier::keyed(&key).expect((4, [1; 32])), &records, head).is_err());
        assert!(!format!("{key:?}").contains("7, 7"), "Debug shows no key bytes");
    }
}
