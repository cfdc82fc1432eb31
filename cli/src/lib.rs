//! The `cardveil` command, as a library so tests and fuzzers can drive it.
//!
//! Subcommands: `detect` and `mask` (SPEC's CLI contract) and `example` (writes a WAV of
//! a keyed test card number to try the tool on). Every failure is one line on
//! stderr and a non-zero exit status; no command leaves a partial file.

pub mod detect;
pub mod example;
pub mod mask;
pub mod output;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(name = "cardveil", version, about = "Find and hide DTMF key presses (card numbers) in call audio")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every DTMF key in a WAV file, one JSON object per line.
    Detect {
        /// WAV file: 16-bit PCM at 8, 16 or 48 kHz, or G.711 μ-law/A-law at 8 kHz; mono or stereo.
        input: PathBuf,
        /// Detector profile: q24 (ITU-T Q.24, default), etsi or ntt.
        #[arg(long, default_value = "q24")]
        profile: String,
    },
    /// Mask every DTMF key press in a WAV file; one JSON line per masked span (never the key).
    Mask {
        /// Input WAV file (formats as for `detect`).
        input: PathBuf,
        /// Output WAV file: same format and length, sample-aligned with the input.
        #[arg(short, long)]
        output: PathBuf,
        /// Replacement: silence, noise (comfort noise at the surrounding level) or tone (one flat tone for every key).
        #[arg(long, default_value = "silence")]
        mode: String,
        /// Look-ahead in ms (0-200; 18 or more masks from 2 ms before each tone).
        #[arg(long, default_value_t = cardveil_core::mask::DEFAULT_LOOKAHEAD_MS)]
        lookahead_ms: u32,
        /// Detector profile for the keys reported: q24 (default), etsi or ntt.
        #[arg(long, default_value = "q24")]
        profile: String,
    },
    /// Write a WAV file of a keyed test card number (4111 1111 1111 1111) to try the tool on.
    Example {
        /// Output WAV file.
        output: PathBuf,
        /// Encoding: pcm16, ulaw or alaw.
        #[arg(long, default_value = "pcm16")]
        encoding: String,
        /// Sample rate (8000, 16000 or 48000; G.711 is 8000 only).
        #[arg(long, default_value_t = 8000)]
        rate: u32,
    },
}

/// A failure to report: one line, and the exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written, or is not acceptable (exit status 1).
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Input { .. } => 1,
        }
    }

    pub(crate) fn input(path: &std::path::Path, message: impl std::fmt::Display) -> CliError {
        CliError::Input { path: path.display().to_string(), message: message.to_string() }
    }
}

/// Runs a parsed command, writing results to `out`.
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    match cli.command {
        Command::Detect { input, profile } => detect::run(&input, &profile, out),
        Command::Mask { input, output, mode, lookahead_ms, profile } => mask::run(
            &mask::MaskArgs { input: &input, output: &output, mode: &mode, lookahead_ms, profile: &profile },
            out,
        ),
        Command::Example { output, encoding, rate } => example::run(&output, &encoding, rate),
    }
}
