//! The token vault. So far: the token formats of SPEC ([`token`]) and the
//! record cryptography ([`crypto`]: sealing, opening, KEK rotation,
//! fingerprints). The `Vault` trait, its stores, the audit chain and the
//! CVV holder are still to come (issue 4).

pub mod crypto;
pub mod token;
