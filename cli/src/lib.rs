//! The `cardveil` command, as a library so tests and fuzzers can drive it.
//!
//! Subcommands: `detect`, `mask` (with `--capture`), `pcap`, `scrub` (archives, with a manifest),
//! `verify` (an assessor's check of a manifest), `keygen` (its signing key), `relay` and `vault`
//! (the CLI contract in the README) and `example` (writes a WAV of a keyed test card number to try the tool on). Every failure is one line on
//! stderr and a non-zero exit status; no command leaves a partial file.

pub mod capture;
pub mod detect;
pub mod example;
pub mod hex;
pub mod json;
pub mod latch;
pub mod manifest;
pub mod mask;
pub mod ng;
pub mod output;
pub mod pcap;
pub mod relay;
mod samples;
pub mod scrub;
pub mod selfcheck;
pub mod sign;
pub mod vault;
pub mod verify;

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
        /// WAV file: 16-bit PCM at 8, 16 or 48 kHz, or G.711 μ-law/A-law at 8 kHz; mono or stereo
        /// (`-`: stdin, e.g. from ffmpeg or sox).
        input: PathBuf,
        /// Detector profile: q24 (ITU-T Q.24, default), etsi or ntt.
        #[arg(long, default_value = "q24")]
        profile: String,
    },
    /// Mask every DTMF key press in a WAV file; one JSON line per masked span (never the key).
    Mask {
        /// Input WAV file (formats as for `detect`; `-`: stdin).
        input: PathBuf,
        /// Output WAV file: same format and length, sample-aligned with the input (`-`: stdout;
        /// the JSON lines then go to stderr).
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        masking: MaskingArgs,
        /// Also capture card fields from the start of the file, in this order (e.g. pan,expiry,cvv);
        /// the PAN is tokenized into the vault and its token printed.
        #[arg(long, value_name = "FIELDS")]
        capture: Option<String>,
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Scrub every RTP stream of a libpcap or pcapng capture: G.711 audio masked, telephone-events
    /// neutralised (or dropped), SIP INFO DTMF rewritten; one JSON line per event (never a key).
    Pcap {
        /// Input capture (libpcap or pcapng; Ethernet, Linux cooked, raw IP or loopback; IPv4/IPv6; UDP).
        input: PathBuf,
        /// Output capture, in the input's format (`-`: stdout): every other packet unchanged;
        /// pcapng blocks that cannot be inspected (custom, journal, unknown) left out.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        scrubbing: CaptureArgs,
    },
    /// Scrub whole archives: WAV, pcap and pcapng files and directory trees (recognised by
    /// content), outputs mirroring the inputs under --out-dir, files in parallel, resumable; one
    /// JSON line per file and a manifest entry per scrubbed file (hashes, spans, a self-check).
    Scrub {
        /// Files and directories (walked recursively).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where the outputs go (created if missing).
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
        /// Files at once (default: the number of cores).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// The manifest (default: DIR/manifest.jsonl; DIR/manifest-K-of-N.jsonl with --shard).
        #[arg(long, value_name = "PATH")]
        manifest: Option<PathBuf>,
        /// Take only this share of the files (K from 0 to N-1, stable by output path), for one
        /// archive spread over N machines.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Sign each manifest line with this Ed25519 key (from `cardveil keygen`).
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
        #[command(flatten)]
        scrubbing: CaptureArgs,
    },
    /// Check a scrub's manifest: hash chain, signatures (with --public-key), every output
    /// re-hashed and re-checked; one JSON line per entry that does not hold; exit 0 only if all do.
    Verify {
        /// The manifest.
        #[arg(long, value_name = "PATH")]
        manifest: PathBuf,
        /// The public key file `cardveil keygen` wrote (FILE.pub).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Where the outputs are (default: the manifest's directory).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Make an Ed25519 key for signing scrub manifests: FILE (secret, mode 0600) and FILE.pub.
    Keygen {
        /// The secret key file to create (never replaced).
        file: PathBuf,
    },
    /// Relay RTP over UDP both ways, scrubbing the media path (G.711 masked, telephone-events
    /// neutralised or dropped): one call (--listen, --forward; capture controlled over
    /// --control), or many driven by a SIP proxy over rtpengine's ng protocol (--ng); JSON lines
    /// on stdout.
    Relay {
        /// Address the caller's RTP arrives at (e.g. 127.0.0.1:40000).
        #[arg(long, value_name = "ADDR", required_unless_present = "ng", conflicts_with = "ng")]
        listen: Option<std::net::SocketAddr>,
        /// Address of the agent's side to send it on to.
        #[arg(long, value_name = "ADDR", required_unless_present = "ng", conflicts_with = "ng")]
        forward: Option<std::net::SocketAddr>,
        #[command(flatten)]
        ng: Box<NgArgs>,
        /// Local address toward the agent (default: an ephemeral port); the agent's RTP comes back here.
        #[arg(long, value_name = "ADDR")]
        bind: Option<std::net::SocketAddr>,
        /// UDP control socket on loopback: datagrams "capture", "cancel", "status", "stop", each
        /// answered with one line.
        #[arg(long, value_name = "ADDR", requires = "control_peer")]
        control: Option<std::net::SocketAddr>,
        /// The one address whose control datagrams are obeyed (every other sender is ignored).
        #[arg(long, value_name = "ADDR")]
        control_peer: Option<std::net::SocketAddr>,
        /// Unix domain datagram control socket to create (mode 0600: only this user may command
        /// the relay); the same commands; replies go to a sender that bound its own path.
        #[arg(long, value_name = "PATH")]
        control_socket: Option<PathBuf>,
        #[command(flatten)]
        masking: MaskingArgs,
        #[command(flatten)]
        telephone_events: EventArgs,
        /// Capture these fields from the caller's keys once "capture" is sent (e.g. pan,expiry,cvv);
        /// the PAN is tokenized into the vault and its token printed.
        #[arg(long, value_name = "FIELDS")]
        capture: Option<String>,
        #[command(flatten)]
        vault: VaultArgs,
    },
    /// Token vault operations: reveal (audited), delete, purge, rotate, audit verify.
    Vault {
        /// What to do.
        #[command(subcommand)]
        op: VaultCommand,
        #[command(flatten)]
        vault: VaultArgs,
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

/// `cardveil relay --ng` and its settings (rtpengine's ng protocol, many calls).
#[derive(Debug, clap::Args)]
pub struct NgArgs {
    /// Serve rtpengine's ng control protocol here instead (UDP; for Kamailio's or OpenSIPS's
    /// rtpengine module): many calls, ports from --ports. No authentication: bind it to
    /// loopback or a private network.
    #[arg(long, value_name = "ADDR")]
    pub ng: Option<std::net::SocketAddr>,
    /// Media port range for --ng (RTP on even ports, RTCP on the next; two pairs per call)
    /// [default: 30000-39999].
    #[arg(long, value_name = "MIN-MAX")]
    pub ports: Option<String>,
    /// Media interface for --ng, [NAME/]ADDR (repeatable; rtpengine's `direction` picks by
    /// NAME; default: the --ng address).
    #[arg(long, value_name = "[NAME/]ADDR")]
    pub interface: Vec<String>,
    /// Media threads for --ng (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Delete --ng calls that carried no media for this many seconds [default: 60].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Let ng's `DTMF-security=off` and `unblock DTMF` turn masking off for a call
    /// (refused without this).
    #[arg(long)]
    pub allow_unmasked: bool,
}

/// How audio is masked (`mask`, `pcap`, `relay`).
#[derive(Debug, Clone, clap::Args)]
pub struct MaskingArgs {
    /// Replacement: silence, noise (comfort noise at the surrounding level) or tone (one flat tone for every key).
    #[arg(long, default_value = "silence")]
    pub mode: String,
    /// Look-ahead in ms (0-200; 18 or more masks from 2 ms before each tone; default: 200 for
    /// files and captures, 20 for the relay). Longer lets a key under other audio be masked from
    /// its onset once the masker is sure of it.
    #[arg(long)]
    pub lookahead_ms: Option<u32>,
    /// Detector profile for the keys reported: q24 (default), etsi or ntt.
    #[arg(long, default_value = "q24")]
    pub profile: String,
}

/// The look-ahead of the commands that mask files and captures (`mask`,
/// `pcap`, `scrub`), ms: the longest, as latency costs nothing there. A
/// key that other audio on the line hides from the candidate tests for its
/// first tens of milliseconds is masked from its onset once the masker is
/// sure of it, if the look-ahead still holds that onset (README, "Under
/// other audio").
pub const FILE_LOOKAHEAD_MS: u32 = cardveil_core::mask::MAX_LOOKAHEAD_MS;

impl MaskingArgs {
    /// The masker settings (8 kHz PCM16; callers set rate and encoding),
    /// with `lookahead_ms` unless `--lookahead-ms` was given.
    ///
    /// # Errors
    /// [`CliError::Usage`] for an unknown mode or profile, or a look-ahead over 200 ms.
    pub fn config(&self, lookahead_ms: u32) -> Result<cardveil_core::mask::MaskerConfig, CliError> {
        mask::masker_config(&self.mode, self.lookahead_ms.unwrap_or(lookahead_ms), &self.profile)
    }
}

/// What happens to RFC 4733 telephone-events (`pcap`, `relay`).
#[derive(Debug, Clone, clap::Args)]
pub struct EventArgs {
    /// Telephone-events: neutralise (every key becomes --fixed-event) or drop (sequence numbers renumbered).
    #[arg(long, default_value = "neutralise")]
    pub events: String,
    /// The event code neutralised events carry (0-255; default 15, key D). SIP INFO bodies get its key (D if not 0-15).
    #[arg(long, default_value_t = cardveil_core::rtp::DEFAULT_FIXED_EVENT)]
    pub fixed_event: u8,
    /// The telephone-event payload type negotiated in SDP.
    #[arg(long, default_value_t = cardveil_core::rtp::DEFAULT_EVENT_PT)]
    pub event_pt: u8,
}

impl EventArgs {
    /// The stream settings these give, with `masker`.
    ///
    /// # Errors
    /// [`CliError::Usage`] for an unknown `--events` or a payload type over 127.
    pub fn stream_config(
        &self,
        masker: cardveil_core::mask::MaskerConfig,
    ) -> Result<cardveil_core::rtp::RtpStreamConfig, CliError> {
        use cardveil_core::rtp::EventAction;
        let event_action = match EventAction::from_name(&self.events) {
            Some(EventAction::Neutralise(_)) => EventAction::Neutralise(self.fixed_event),
            Some(a) => a,
            None => return Err(CliError::Usage(format!("unknown --events '{}' (neutralise or drop)", self.events))),
        };
        if self.event_pt > 127 {
            return Err(CliError::Usage(format!("--event-pt {} is not an RTP payload type (0-127)", self.event_pt)));
        }
        Ok(cardveil_core::rtp::RtpStreamConfig { masker, event_payload_type: self.event_pt, event_action })
    }
}

/// How recordings and captures are scrubbed (`pcap`, `scrub`).
#[derive(Debug, Clone, clap::Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    masking: MaskingArgs,
    #[command(flatten)]
    telephone_events: EventArgs,
    /// In captures, treat UDP to or from this port as RTP whatever it looks like (repeatable).
    #[arg(long = "rtp-port", value_name = "PORT")]
    rtp_ports: Vec<u16>,
}

impl CaptureArgs {
    /// The stream settings and the forced RTP ports.
    ///
    /// # Errors
    /// [`CliError::Usage`] as [`MaskingArgs::config`] and [`EventArgs::stream_config`] say.
    pub fn options(&self) -> Result<(cardveil_core::rtp::RtpStreamConfig, Vec<u16>), CliError> {
        Ok((self.telephone_events.stream_config(self.masking.config(FILE_LOOKAHEAD_MS)?)?, self.rtp_ports.clone()))
    }
}

/// Where the vault is.
#[derive(Debug, Clone, clap::Args)]
pub struct VaultArgs {
    /// Vault: a SQLite file, or a PostgreSQL URL (postgresql://… or host=…). Default:
    /// $CARDVEIL_VAULT, else $XDG_DATA_HOME/cardveil/vault.sqlite (~/.local/share/cardveil/vault.sqlite).
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub vault: Option<String>,
    /// Key file (KEKs). Default: $CARDVEIL_KEY_FILE, else the SQLite vault's path + ".key",
    /// created on first use as a development key.
    #[arg(long, global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

/// `cardveil vault …`.
#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Print the PAN behind a token (audited).
    Reveal {
        /// The token.
        token: String,
    },
    /// Delete a token's record.
    Delete {
        /// The token.
        token: String,
    },
    /// Delete every record whose time to live has passed.
    Purge,
    /// Add a new key version to the key file and rewrap every record under it.
    Rotate,
    /// The audit trail.
    Audit {
        /// What to do with it.
        #[command(subcommand)]
        op: AuditCommand,
    },
}

/// `cardveil vault audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the keyed audit chain: any edited, removed, inserted or forged record is reported;
    /// with --head, also that the chain still holds a head exported earlier (a cut tail).
    Verify {
        /// A head printed by `cardveil vault audit head` earlier (SEQ:TAG), kept elsewhere.
        #[arg(long, value_name = "SEQ:TAG")]
        head: Option<String>,
    },
    /// Print the audit chain's head (last record and its tag) to keep outside the vault.
    Head,
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
        Command::Mask { input, output, masking, capture, vault } => mask::run(
            &mask::MaskArgs {
                input: &input,
                output: &output,
                masker: masking.config(FILE_LOOKAHEAD_MS)?,
                capture: capture.as_deref(),
                vault: vault::VaultLocation::new(vault.vault, vault.key_file),
            },
            out,
        ),
        Command::Pcap { input, output, scrubbing } => {
            let (stream, rtp_ports) = scrubbing.options()?;
            pcap::run(&pcap::PcapArgs { input: &input, output: &output, stream, rtp_ports: &rtp_ports }, out)
        }
        Command::Scrub { inputs, out_dir, jobs, manifest, shard, signing_key, scrubbing } => {
            let (stream, rtp_ports) = scrubbing.options()?;
            let args = scrub::ScrubArgs { inputs, out_dir, jobs, manifest, shard, signing_key, stream, rtp_ports };
            scrub::run(&args, out)
        }
        Command::Verify { manifest, public_key, out_dir } => verify::run(
            &verify::VerifyArgs { manifest: &manifest, public_key: public_key.as_deref(), out_dir: out_dir.as_deref() },
            out,
        ),
        Command::Keygen { file } => sign::keygen(&file, out),
        Command::Relay { ng: n, masking, telephone_events, capture, vault, .. } if n.ng.is_some() => {
            let n = *n;
            ng::serve::run(
                ng::serve::NgArgs {
                    ng: n.ng.expect("the guard checked it"),
                    interfaces: n.interface,
                    ports: n.ports.as_deref().unwrap_or("30000-39999"),
                    threads: n.threads,
                    timeout: n.timeout.unwrap_or(60),
                    allow_unmasked: n.allow_unmasked,
                    stream: telephone_events
                        .stream_config(masking.config(cardveil_core::mask::DEFAULT_LOOKAHEAD_MS)?)?,
                    capture: capture.as_deref(),
                    vault: vault::VaultLocation::new(vault.vault, vault.key_file),
                },
                out,
            )
        }
        Command::Relay { ng: n, .. }
            if n.ports.is_some()
                || !n.interface.is_empty()
                || n.threads.is_some()
                || n.timeout.is_some()
                || n.allow_unmasked =>
        {
            Err(CliError::Usage("--ports, --interface, --threads, --timeout and --allow-unmasked need --ng".into()))
        }
        Command::Relay {
            listen: Some(listen),
            forward: Some(forward),
            bind,
            control,
            control_peer,
            control_socket,
            masking,
            telephone_events,
            capture,
            vault,
            ..
        } => relay::run(
            relay::RelayArgs {
                listen,
                forward,
                bind,
                control,
                control_peer,
                control_socket,
                stream: telephone_events.stream_config(masking.config(cardveil_core::mask::DEFAULT_LOOKAHEAD_MS)?)?,
                capture: capture.as_deref(),
                vault: vault::VaultLocation::new(vault.vault, vault.key_file),
            },
            out,
        ),
        Command::Relay { .. } => Err(CliError::Usage("relay needs --listen and --forward, or --ng".into())),
        Command::Vault { op, vault } => {
            let op = match op {
                VaultCommand::Reveal { token } => vault::VaultOp::Reveal(token),
                VaultCommand::Delete { token } => vault::VaultOp::Delete(token),
                VaultCommand::Purge => vault::VaultOp::Purge,
                VaultCommand::Rotate => vault::VaultOp::Rotate,
                VaultCommand::Audit { op: AuditCommand::Verify { head } } => vault::VaultOp::AuditVerify(head),
                VaultCommand::Audit { op: AuditCommand::Head } => vault::VaultOp::AuditHead,
            };
            vault::run(&op, &vault::VaultLocation::new(vault.vault, vault.key_file), out)
        }
        Command::Example { output, encoding, rate } => example::run(&output, &encoding, rate),
    }
}
