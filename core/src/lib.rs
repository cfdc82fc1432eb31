//! cardveil-core: the plain-Rust heart of cardveil.
//!
//! Data flows one way: [`codec`] (G.711, sample formats) → [`dtmf`] (detection,
//! tone generation) → masking → capture → vault. This crate contains no
//! `unsafe` code, does no I/O and never logs.
//!
//! See `../shared/SPEC.md` for the standards each module meets.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod dtmf;

mod error;
pub use error::Error;
