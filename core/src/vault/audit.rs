//! The audit trail: one record per vault operation — who, what, when,
//! which token, the outcome — and never card data. Records form a hash
//! chain: each one's hash covers its fields and the previous hash, and the
//! store keeps the head (last sequence number and hash) beside them, written
//! in the same transaction. Editing a record breaks its hash; removing or
//! inserting one breaks the sequence or the links; cutting records off the
//! end no longer matches the head.

use ring::digest;

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

/// The hash of a record's fields: SHA-256 over a length-prefixed encoding,
/// so no two different records encode alike.
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
    ctx.update(b"cardveil audit v1");
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    for field in [Some(actor), Some(operation), token, Some(outcome)] {
        match field {
            None => ctx.update(&[0]),
            Some(f) => {
                ctx.update(&[1]);
                ctx.update(&(f.len() as u64).to_be_bytes());
                ctx.update(f.as_bytes());
            }
        }
    }
    ctx.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// The record that follows `head`.
pub fn next(
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
        hash: hash(seq, at, actor, operation, token, outcome, &prev_hash),
    }
}

/// Checks records against the chain, batch by batch.
#[derive(Debug, Default)]
pub struct Verifier {
    seq: u64,
    hash: [u8; 32],
}

impl Verifier {
    /// A verifier at the start of the chain.
    pub fn new() -> Verifier {
        Verifier::default()
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
        if hash(r.seq, r.at, &r.actor, &r.operation, r.token.as_deref(), &r.outcome, &r.prev_hash) != r.hash {
            return broken("record was altered (hash does not match its fields)");
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
            let r = next(head, 1000 + i as i64, "agent:7", "tokenize", Some("tok_x"), "ok");
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
}
