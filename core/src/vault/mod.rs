//! The token vault. So far: the token formats of SPEC (`token`). The
//! encrypted records, stores, audit chain and key rotation are still to come
//! (issue 4).

pub mod token;
