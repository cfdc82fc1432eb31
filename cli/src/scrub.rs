//! `cardveil scrub IN... --out-dir DIR`: remediation of whole archives.
//!
//! Each input is a file or a directory (walked recursively; symbolic links
//! to files are followed, to directories not). WAV, pcap and pcapng are
//! recognised by their first bytes, whatever their names. Outputs mirror
//! the inputs under `DIR` with the same names (a directory's files keep
//! their paths below it; a file given by name lands at the top); files
//! are done `--jobs` at a time, each streamed (memory does not grow with a file). Every output is written to a temporary,
//! read back and checked by [`crate::selfcheck`] before it replaces
//! anything: an output that fails its self-check never appears.
//!
//! One JSON line per file on stdout (`scrubbed`, `skipped` or `failed`,
//! with the reason), one manifest entry per scrubbed file (see
//! [`crate::manifest`]), a progress line on stderr when it is a terminal.
//! A re-run skips the files whose manifest entry still holds (same input
//! hash, settings and version, the output there with its hash), so an
//! interrupted run resumes where it stopped. `--shard K/N` takes the files
//! whose output path hashes to K modulo N: N machines, one archive.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use cardveil_core::codec::Encoding;
use cardveil_core::pcap::file::{Item, Reader};
use cardveil_core::pcap::{PcapEvent, PcapOptions};
use cardveil_core::rtp::{EventAction, RtpStreamConfig};

use crate::CliError;
use crate::json::Obj;
use crate::manifest::Writer;
use crate::mask::mask_stream;
use crate::output::{MAX_PENDING, Output};
use crate::selfcheck::{Findings, Hashing, check_capture, check_wav};
use crate::sign::Signer;

/// `cardveil scrub` arguments.
#[derive(Debug)]
pub struct ScrubArgs {
    /// Files and directories.
    pub inputs: Vec<PathBuf>,
    /// Where the outputs go.
    pub out_dir: PathBuf,
    /// Files at once (default: the cores).
    pub jobs: Option<usize>,
    /// The manifest (default `DIR/manifest.jsonl`, or `DIR/manifest-K-of-N.jsonl` with a shard).
    pub manifest: Option<PathBuf>,
    /// `K/N`.
    pub shard: Option<String>,
    /// Signs the manifest's lines.
    pub signing_key: Option<PathBuf>,
    /// Masking and telephone-event settings.
    pub stream: RtpStreamConfig,
    /// Ports forced to RTP in captures.
    pub rtp_ports: Vec<u16>,
}

/// The recording formats `scrub` takes, by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RIFF/WAVE.
    Wav,
    /// libpcap.
    Pcap,
    /// pcapng.
    Pcapng,
}

impl Kind {
    /// Recognises a file by its first bytes.
    pub fn sniff(head: &[u8]) -> Option<Kind> {
        match head {
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => Some(Kind::Wav),
            [0xD4, 0xC3, 0xB2, 0xA1, ..]
            | [0x4D, 0x3C, 0xB2, 0xA1, ..]
            | [0xA1, 0xB2, 0xC3, 0xD4, ..]
            | [0xA1, 0xB2, 0x3C, 0x4D, ..] => Some(Kind::Pcap),
            [0x0A, 0x0D, 0x0D, 0x0A, ..] => Some(Kind::Pcapng),
            _ => None,
        }
    }

    /// Its name in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Wav => "wav",
            Kind::Pcap => "pcap",
            Kind::Pcapng => "pcapng",
        }
    }
}

/// One file to do: where it is, and its output path below `--out-dir`.
#[derive(Debug, Clone)]
struct Job {
    input: PathBuf,
    rel: PathBuf,
}

/// What became of a file.
enum Outcome {
    Scrubbed(Box<Report>),
    Skipped,
    Failed(String),
}

/// A scrubbed file's manifest entry, before it is chained and signed.
struct Report {
    kind: Kind,
    input_sha256: String,
    output_sha256: String,
    /// Audio: (encoding, rate, channels) of a WAV.
    audio: Option<(Encoding, u32, u16)>,
    duration_ms: f64,
    spans: usize,
    masked_ms: f64,
    keys: usize,
    findings: Findings,
}

/// The settings as one canonical string (the manifest's `"settings"`; a
/// re-run with other settings does every file again).
pub fn settings_text(stream: &RtpStreamConfig, rtp_ports: &[u16]) -> String {
    let m = &stream.masker;
    let events = match stream.event_action {
        EventAction::Neutralise(c) => format!("neutralise:{c}"),
        EventAction::Drop => "drop".into(),
    };
    let ports: Vec<String> = rtp_ports.iter().map(u16::to_string).collect();
    format!(
        "mode={} lookahead_ms={} profile={} events={events} event_pt={} rtp_ports={}",
        format!("{:?}", m.mode).to_lowercase(),
        m.lookahead_ms,
        format!("{:?}", m.profile).to_lowercase(),
        stream.event_payload_type,
        ports.join(",")
    )
}

/// `K/N` → (K, N), K from 0 to N − 1.
fn parse_shard(s: &str) -> Result<(u64, u64), CliError> {
    let bad = || CliError::Usage(format!("--shard {s}: expected K/N with 0 <= K < N (e.g. 0/4)"));
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The shard a relative output path belongs to: its SHA-256 modulo `n`
/// (the same on every machine, whatever the mount point).
fn shard_of(rel: &Path, n: u64) -> u64 {
    let h = ring::digest::digest(&ring::digest::SHA256, rel.as_os_str().as_encoded_bytes());
    let first: [u8; 8] = h.as_ref()[..8].try_into().expect("8 bytes");
    u64::from_be_bytes(first) % n
}

/// Walks the inputs: the jobs, and the paths that cannot be walked (with why).
fn enumerate(inputs: &[PathBuf], out_dir: &Path) -> (Vec<Job>, Vec<(PathBuf, String)>) {
    let out_canon = std::fs::canonicalize(out_dir).ok();
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(m) if m.is_dir() => walk(input, Path::new(""), out_canon.as_deref(), &mut jobs, &mut bad),
            Ok(m) if m.is_file() => {
                let name = input.file_name().map(PathBuf::from).unwrap_or_else(|| input.clone());
                jobs.push(Job { input: input.clone(), rel: name });
            }
            Ok(_) => bad.push((input.clone(), "not a file or a directory".into())),
            Err(e) => bad.push((input.clone(), format!("cannot read: {e}"))),
        }
    }
    (jobs, bad)
}

fn walk(dir: &Path, rel: &Path, out: Option<&Path>, jobs: &mut Vec<Job>, bad: &mut Vec<(PathBuf, String)>) {
    // The output directory inside an input tree is not input.
    if out.is_some() && std::fs::canonicalize(dir).ok().as_deref() == out {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return bad.push((dir.to_owned(), format!("cannot read: {e}"))),
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = rel.join(e.file_name());
        let Ok(kind) = e.file_type() else {
            bad.push((path, "cannot read its type".into()));
            continue;
        };
        if kind.is_dir() {
            walk(&path, &rel, out, jobs, bad);
        } else if kind.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => jobs.push(Job { input: path, rel }),
                Ok(m) if m.is_dir() => bad.push((path, "a symbolic link to a directory: not followed".into())),
                Ok(_) => bad.push((path, "a symbolic link to something that is not a file".into())),
                Err(e) => bad.push((path, format!("a dangling symbolic link: {e}"))),
            }
        } else if kind.is_file() {
            jobs.push(Job { input: path, rel });
        } else {
            bad.push((path, "not a regular file".into()));
        }
    }
}

/// Everything a worker needs, shared.
struct Context<'a> {
    out_dir: &'a Path,
    stream: RtpStreamConfig,
    rtp_ports: &'a [u16],
    settings: &'a str,
    /// Manifest entries so far by output path: (input hash, output hash, settings, version, self-check).
    previous: HashMap<String, [String; 5]>,
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Context<'_> {
    fn run(&self, job: &Job) -> Outcome {
        match self.try_run(job) {
            Ok(o) => o,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn try_run(&self, job: &Job) -> Result<Outcome, CliError> {
        let cannot = |e: std::io::Error| CliError::input(&job.input, format!("cannot read: {e}"));
        let mut head = Vec::with_capacity(12);
        std::fs::File::open(&job.input).and_then(|f| f.take(12).read_to_end(&mut head)).map_err(cannot)?;
        let Some(kind) = Kind::sniff(&head) else {
            return Err(CliError::input(&job.input, "not a recording cardveil scrubs (WAV, pcap or pcapng)"));
        };
        let out_path = self.out_dir.join(&job.rel);
        if self.up_to_date(job, &out_path)? {
            return Ok(Outcome::Skipped);
        }
        if let Some(parent) = out_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| CliError::input(parent, format!("cannot create: {e}")))?;
        }
        let report = match kind {
            Kind::Wav => self.wav(job, &out_path)?,
            Kind::Pcap | Kind::Pcapng => self.capture(job, &out_path, kind)?,
        };
        Ok(Outcome::Scrubbed(Box::new(report)))
    }

    /// Whether the manifest's entry for this output still holds.
    fn up_to_date(&self, job: &Job, out_path: &Path) -> Result<bool, CliError> {
        let Some([input, output, settings, version, check]) = self.previous.get(&rel_text(&job.rel)) else {
            return Ok(false);
        };
        if settings != self.settings || version != VERSION || check != "pass" || !out_path.is_file() {
            return Ok(false);
        }
        let hash = |p: &Path| -> Result<String, CliError> {
            let f = std::fs::File::open(p).map_err(|e| CliError::input(p, format!("cannot read: {e}")))?;
            Hashing::new(std::io::BufReader::new(f))
                .finish()
                .map_err(|e| CliError::input(p, format!("cannot read: {e}")))
        };
        Ok(hash(out_path)? == *output && hash(&job.input)? == *input)
    }

    fn wav(&self, job: &Job, out_path: &Path) -> Result<Report, CliError> {
        let file =
            std::fs::File::open(&job.input).map_err(|e| CliError::input(&job.input, format!("cannot read: {e}")))?;
        let mut input = Hashing::new(std::io::BufReader::with_capacity(1 << 16, file));
        let mut output = Output::create(out_path)?;
        let masked = mask_stream(&mut input, &job.input, self.stream.masker, |_| None, &mut output)?;
        let input_sha256 = input.finish().map_err(|e| CliError::input(&job.input, format!("cannot read: {e}")))?;
        let f = masked.format;
        let written = output.written_so_far()?.map(Path::to_owned).unwrap_or_else(|| out_path.to_owned());
        let back =
            std::fs::File::open(&written).map_err(|e| CliError::input(out_path, format!("cannot read back: {e}")))?;
        let (findings, output_sha256) = check_wav(std::io::BufReader::new(back), out_path, self.stream.masker.profile)?;
        refuse_unclean(out_path, &findings)?;
        output.commit()?;
        let spans: Vec<_> = masked.channels.iter().flat_map(|c| c.spans.iter()).collect();
        let ms = |samples: u64| samples as f64 * 1000.0 / f.sample_rate as f64;
        Ok(Report {
            kind: Kind::Wav,
            input_sha256,
            output_sha256,
            audio: Some((f.encoding, f.sample_rate, f.channels)),
            duration_ms: ms(masked.frames),
            spans: spans.len(),
            masked_ms: spans.iter().map(|s| ms(s.end - s.start)).sum(),
            keys: masked.channels.iter().map(|c| c.keys).sum(),
            findings,
        })
    }

    fn capture(&self, job: &Job, out_path: &Path, kind: Kind) -> Result<Report, CliError> {
        let options = PcapOptions { stream: self.stream, rtp_ports: self.rtp_ports.to_vec() };
        let (mut spans, mut masked_ms, mut keys) = (0, 0.0, 0);
        let (mut first_ns, mut last_ns) = (None, 0);
        let mut output = Output::create(out_path)?;
        crate::pcap::scrub_file(&job.input, &mut output, &options, &mut |e| match e {
            PcapEvent::Masked { start_ms, end_ms, .. } => {
                spans += 1;
                masked_ms += end_ms - start_ms;
            }
            PcapEvent::Key { .. } => keys += 1,
            _ => {}
        })?;
        let written = output.written_so_far()?.map(Path::to_owned).unwrap_or_else(|| out_path.to_owned());
        let back =
            std::fs::File::open(&written).map_err(|e| CliError::input(out_path, format!("cannot read back: {e}")))?;
        let (findings, output_sha256) = check_capture(std::io::BufReader::new(back), out_path, &self.stream)?;
        refuse_unclean(out_path, &findings)?;
        output.commit()?;
        // The input's hash and its time span, in one more pass over it.
        let file =
            std::fs::File::open(&job.input).map_err(|e| CliError::input(&job.input, format!("cannot read: {e}")))?;
        let mut hashing = Hashing::new(std::io::BufReader::new(file));
        let mut reader = Reader::new(&mut hashing).map_err(|e| CliError::input(&job.input, e))?;
        while let Some(item) = reader.next_item().map_err(|e| CliError::input(&job.input, e))? {
            if let Item::Packet { ts_ns, .. } = item {
                first_ns.get_or_insert(ts_ns);
                last_ns = ts_ns;
            }
        }
        drop(reader);
        let input_sha256 = hashing.finish().map_err(|e| CliError::input(&job.input, format!("cannot read: {e}")))?;
        let duration_ms = first_ns.map_or(0.0, |f: u64| last_ns.saturating_sub(f) as f64 / 1e6);
        Ok(Report { kind, input_sha256, output_sha256, audio: None, duration_ms, spans, masked_ms, keys, findings })
    }
}

/// An output whose self-check found anything is not written.
fn refuse_unclean(out_path: &Path, f: &Findings) -> Result<(), CliError> {
    if f.clean() {
        return Ok(());
    }
    Err(CliError::input(
        out_path,
        format!(
            "self-check failed ({} keys, {} spans to mask, {} telephone-events, {} SIP INFO bodies still found): not written",
            f.keys, f.candidates, f.events, f.sip_info
        ),
    ))
}

/// A relative path as the manifest writes it.
fn rel_text(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

/// The manifest entry of a scrubbed file.
fn entry(job: &Job, r: &Report, settings: &str) -> Obj {
    let mut o = Obj::new()
        .str("input", &job.input.to_string_lossy())
        .str("output", &rel_text(&job.rel))
        .str("format", r.kind.name())
        .str("input_sha256", &r.input_sha256)
        .str("output_sha256", &r.output_sha256)
        .ms("duration_ms", r.duration_ms);
    if let Some((encoding, rate, channels)) = r.audio {
        let name = match encoding {
            Encoding::Pcm16 => "pcm16",
            Encoding::Ulaw => "ulaw",
            Encoding::Alaw => "alaw",
        };
        o = o.str("encoding", name).int("sample_rate", rate).int("channels", channels);
    }
    o.count("masked_spans", r.spans)
        .ms("masked_ms", r.masked_ms)
        .count("keys", r.keys)
        .str("settings", settings)
        .str("version", VERSION)
        .str("self_check", if r.findings.clean() { "pass" } else { "fail" })
}

/// The default manifest path.
fn default_manifest(out_dir: &Path, shard: Option<(u64, u64)>) -> PathBuf {
    match shard {
        Some((k, n)) => out_dir.join(format!("manifest-{k}-of-{n}.jsonl")),
        None => out_dir.join("manifest.jsonl"),
    }
}

/// Runs `cardveil scrub`.
pub fn run(args: &ScrubArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if args.inputs.is_empty() {
        return Err(CliError::Usage("cardveil scrub needs at least one file or directory".into()));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs_n = args.jobs.unwrap_or(cores);
    if jobs_n == 0 || jobs_n > MAX_PENDING {
        return Err(CliError::Usage(format!("--jobs {jobs_n}: from 1 to {MAX_PENDING}")));
    }
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let signer = args.signing_key.as_deref().map(Signer::load).transpose()?;
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| CliError::input(&args.out_dir, format!("cannot create: {e}")))?;
    let manifest_path = args.manifest.clone().unwrap_or_else(|| default_manifest(&args.out_dir, shard));
    let (mut manifest, old) = Writer::open(&manifest_path, signer)?;
    let (mut jobs, unreadable) = enumerate(&args.inputs, &args.out_dir);
    // Nor is the manifest, wherever it is.
    if let Ok(m) = std::fs::canonicalize(&manifest_path) {
        jobs.retain(|j| {
            j.input.file_name() != m.file_name() || std::fs::canonicalize(&j.input).ok() != Some(m.clone())
        });
    }
    // Two inputs may not land on one output.
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    for j in &jobs {
        if let Some(first) = seen.insert(j.rel.clone(), &j.input) {
            return Err(CliError::Usage(format!(
                "{} and {} would both be written to {}: give their directories instead",
                first.display(),
                j.input.display(),
                args.out_dir.join(&j.rel).display()
            )));
        }
    }
    drop(seen);
    if let Some((k, n)) = shard {
        jobs.retain(|j| shard_of(&j.rel, n) == k);
    }
    let field = |m: &serde_json::Map<String, serde_json::Value>, k: &str| {
        m.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned()
    };
    let previous: HashMap<String, [String; 5]> = old
        .iter()
        .map(|(_, m)| {
            let f = |k| field(m, k);
            (f("output"), [f("input_sha256"), f("output_sha256"), f("settings"), f("version"), f("self_check")])
        })
        .collect();
    let settings = settings_text(&args.stream, &args.rtp_ports);
    let ctx = Context {
        out_dir: &args.out_dir,
        stream: args.stream,
        rtp_ports: &args.rtp_ports,
        settings: &settings,
        previous,
    };
    let io = |e: std::io::Error| CliError::input(Path::new("<stdout>"), e);
    let mut failed = 0usize;
    for (path, why) in &unreadable {
        failed += 1;
        let line = Obj::event("failed").str("input", &path.to_string_lossy()).str("error", why);
        writeln!(out, "{}", line.finish()).map_err(io)?;
    }
    let total = jobs.len();
    let next = AtomicUsize::new(0);
    let mut progress = Progress::new(total);
    let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
    let (mut scrubbed, mut skipped) = (0usize, 0usize);
    let result = std::thread::scope(|scope| -> Result<(), CliError> {
        for _ in 0..jobs_n.min(total.max(1)) {
            let tx = tx.clone();
            let (ctx, jobs, next) = (&ctx, &jobs, &next);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    if tx.send((i, ctx.run(job))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, outcome) in rx {
            let job = &jobs[i];
            let base = |event: &str| {
                Obj::event(event).str("input", &job.input.to_string_lossy()).str("output", &rel_text(&job.rel))
            };
            let line = match outcome {
                Outcome::Scrubbed(r) => {
                    scrubbed += 1;
                    progress.audio_ms += r.duration_ms;
                    manifest.append(entry(job, &r, &settings))?;
                    base("scrubbed")
                        .str("format", r.kind.name())
                        .count("masked_spans", r.spans)
                        .count("keys", r.keys)
                        .str("self_check", "pass")
                }
                Outcome::Skipped => {
                    skipped += 1;
                    base("skipped").str("reason", "up to date (its manifest entry holds)")
                }
                Outcome::Failed(why) => {
                    failed += 1;
                    base("failed").str("error", &why)
                }
            };
            writeln!(out, "{}", line.finish()).map_err(io)?;
            out.flush().map_err(io)?;
            progress.done += 1;
            progress.draw(false);
        }
        Ok(())
    });
    progress.draw(true);
    result?;
    let summary = Obj::event("summary")
        .count("files", total + unreadable.len())
        .count("scrubbed", scrubbed)
        .count("skipped", skipped)
        .count("failed", failed)
        .str("manifest", &manifest_path.to_string_lossy());
    writeln!(out, "{}", summary.finish()).map_err(io)?;
    if failed > 0 {
        return Err(CliError::input(
            Path::new("scrub"),
            format!("{failed} of {} files failed (see their lines)", total + unreadable.len()),
        ));
    }
    Ok(())
}

/// The progress line on stderr (a terminal only): files, audio hours, rate, ETA.
struct Progress {
    total: usize,
    done: usize,
    audio_ms: f64,
    start: Instant,
    last: Option<Instant>,
    on: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            done: 0,
            audio_ms: 0.0,
            start: Instant::now(),
            last: None,
            on: std::io::stderr().is_terminal(),
        }
    }

    fn draw(&mut self, last: bool) {
        if !self.on || (!last && self.last.is_some_and(|t| t.elapsed().as_millis() < 200)) {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let hours = self.audio_ms / 3.6e6;
        let eta = if self.done > 0 { secs / self.done as f64 * (self.total - self.done) as f64 } else { 0.0 };
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r\x1b[2Kfiles {}/{}  audio {hours:.2} h  {:.0}x real time  {:.1} files/s  ETA {:.0} s",
            self.done,
            self.total,
            self.audio_ms / 1000.0 / secs,
            self.done as f64 / secs,
            eta
        );
        if last {
            let _ = writeln!(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_formats() {
        assert_eq!(parse_shard("0/4").unwrap(), (0, 4));
        assert_eq!(parse_shard("3/4").unwrap(), (3, 4));
        for bad in ["4/4", "1", "a/b", "0/0", "-1/3"] {
            assert_eq!(parse_shard(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
        // Every path in exactly one shard; the split is stable and roughly even.
        let paths: Vec<PathBuf> = (0..400).map(|i| PathBuf::from(format!("calls/{i}.wav"))).collect();
        let counts: Vec<usize> = (0..4).map(|k| paths.iter().filter(|p| shard_of(p, 4) == k).count()).collect();
        assert_eq!(counts.iter().sum::<usize>(), 400);
        assert!(counts.iter().all(|&c| (70..=130).contains(&c)), "{counts:?}");
        assert_eq!(shard_of(Path::new("calls/7.wav"), 4), shard_of(Path::new("calls/7.wav"), 4));
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0WAVEfmt "), Some(Kind::Wav));
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0AVI "), None);
        assert_eq!(Kind::sniff(&[0xD4, 0xC3, 0xB2, 0xA1, 2, 0]), Some(Kind::Pcap));
        assert_eq!(Kind::sniff(&[0x0A, 0x0D, 0x0D, 0x0A]), Some(Kind::Pcapng));
        assert_eq!(Kind::sniff(b"ID3"), None);
    }
}
