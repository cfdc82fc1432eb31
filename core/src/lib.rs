//! cardveil-core: the plain-Rust heart of cardveil.
//!
//! Data flows one way: [`codec`] (G.711, sample formats) → [`dtmf`] (detection,
//! tone generation) → [`mask`] → [`capture`] → [`vault`]; [`call`] ties one
//! call's two streams and its capture together. [`rtp`] follows keys sent
//! out of band and scrubs RTP streams in place; [`pcap`] scrubs whole
//! libpcap and pcapng captures (streamed from readers the caller opens). This crate contains no
//! `unsafe` code except in two small modules — the AVX2 builds of the DTMF
//! correlator and of G.711 decoding, called after checking the CPU has AVX2,
//! bit-identical to the portable code (tested); it never logs and does no file
//! or network I/O (the vault reads the OS random source).
//!
//! The standards each module meets, how the detector and the maskers work,
//! and what was measured are in the project's README (this package's
//! readme, <https://example.invalid/cardveil#readme>); the layers, which
//! module owns which state and which thread calls what, in its
//! `docs/ARCHITECTURE.md`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod call;
pub mod capture;
pub mod codec;
pub mod dtmf;
pub mod mask;
pub mod pcap;
pub mod rtp;
pub mod vault;

mod read;
pub use call::Error;
