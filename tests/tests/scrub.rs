//! Acceptance for `cardveil scrub` and `cardveil verify` over a generated
//! archive: WAVs (PCM16, μ-law, A-law, 16 kHz, stereo with speech on the
//! other leg) and captures (pcap, pcapng) in a tree.
//!
//! * every output is leak-free for all four decoders (cardveil, spandsp at
//!   default and most sensitive settings, multimon-ng, dtmf2num), and in
//!   the captures no telephone-event or SIP INFO body keeps a key;
//! * one signed manifest entry per file; a second run skips them all and
//!   leaves the manifest as it was;
//! * `verify` passes, then fails after one byte of one output is changed
//!   and after a manifest line is edited (and passes again once undone);
//! * two shards take disjoint shares that make up the whole, with the same
//!   bytes as one run with two jobs;
//! * files that are not recordings, or are cut short, are reported with
//!   their reason, leave no output, and make the run's exit status 1.

use std::path::{Path, PathBuf};
use std::process::Command;

use cardveil_cli::example::synthesize;
use cardveil_cli::{Cli, run};
use cardveil_core::codec::wav::{self, WavFormat};
use cardveil_core::codec::{Encoding, alaw, ulaw};
use cardveil_core::pcap::file::Capture;
use cardveil_core::pcap::net::find_udp;
use cardveil_core::rtp::{RtpHeader, TelephoneEvent};
use cardveil_tests::masking::{
    decode_cardveil, decode_dtmf2num, decode_multimon, decode_spandsp, decode_spandsp_sensitive,
};
use cardveil_tests::rtpcall::{DIR, keyed_call, write_pcap};
use cardveil_tests::{talkoff, tools};
use clap::Parser;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cardveil-scrub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `cardveil ARGS…` in process: its stdout lines (each one JSON
/// object) and exit status.
fn cardveil(args: &[&str]) -> (Vec<serde_json::Value>, i32) {
    let mut argv = vec!["cardveil"];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    let code = match run(Cli::try_parse_from(argv).unwrap(), &mut out) {
        Ok(()) => 0,
        Err(e) => {
            assert!(!e.to_string().contains('\n'), "one line: {e}");
            e.exit_code()
        }
    };
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (lines, code)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn write_wav(path: &Path, format: WavFormat, channels: &[Vec<i16>]) {
    let mut data = Vec::new();
    for i in 0..channels[0].len() {
        for ch in channels {
            match format.encoding {
                Encoding::Pcm16 => data.extend_from_slice(&ch[i].to_le_bytes()),
                Encoding::Ulaw => data.push(ulaw::encode(ch[i])),
                Encoding::Alaw => data.push(alaw::encode(ch[i])),
            }
        }
    }
    let mut f = wav::header(format, data.len() as u32);
    f.extend_from_slice(&data);
    if data.len() % 2 == 1 {
        f.push(0);
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, f).unwrap();
}

/// Each channel of a WAV, as linear PCM.
fn channels(path: &Path) -> (u32, Vec<Vec<i16>>) {
    let bytes = std::fs::read(path).unwrap();
    let w = wav::parse(&bytes).unwrap();
    (w.format.sample_rate, (0..w.format.channels as usize).map(|c| wav::channel_pcm16(&w, c)).collect())
}

/// What every decoder reads in `pcm` (cardveil, spandsp ×2 if built, multimon-ng, dtmf2num).
fn reads(rate: u32, pcm: &[i16], tag: &str) -> Vec<(&'static str, String)> {
    let dir = tmp("decoders");
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = vec![
        ("cardveil", decode_cardveil(rate, pcm)),
        ("multimon-ng", decode_multimon(rate, pcm, &dir, tag)),
        ("dtmf2num", decode_dtmf2num(rate, pcm, &dir, tag)),
    ];
    if rate == 8000 {
        // spandsp's receiver runs at 8 kHz.
        if let (Some(a), Some(b)) = (decode_spandsp(pcm), decode_spandsp_sensitive(pcm)) {
            r.push(("spandsp", a));
            r.push(("spandsp-sensitive", b));
        }
    }
    r
}

/// The archive: relative path → what it holds.
fn build_tree(root: &Path) -> Vec<PathBuf> {
    let speech_dir = tmp("speech");
    std::fs::create_dir_all(&speech_dir).unwrap();
    let voice = &talkoff::voices()[0];
    let mut files = Vec::new();
    for (name, encoding, rate) in [
        ("calls/2024/01/pcm16.wav", Encoding::Pcm16, 8000),
        ("calls/2024/01/ulaw.wav", Encoding::Ulaw, 8000),
        ("calls/2024/02/alaw.wav", Encoding::Alaw, 8000),
        ("calls/wideband/16k.wav", Encoding::Pcm16, 16000),
    ] {
        // The keyed card, then speech with no key (the self-check must not object to it).
        let (mut pcm, _) = synthesize(rate);
        pcm.extend(talkoff::speech(voice, 4.0, rate, 7, &speech_dir));
        write_wav(&root.join(name), WavFormat { encoding, sample_rate: rate, channels: 1 }, &[pcm]);
        files.push(PathBuf::from(name));
    }
    // Stereo: the caller keys on the left, the agent talks on the right.
    let (keys, _) = synthesize(8000);
    let agent = talkoff::speech(&talkoff::voices()[1], keys.len() as f64 / 8000.0 + 0.1, 8000, 11, &speech_dir);
    let name = "calls/stereo/two-legs.wav";
    let format = WavFormat { encoding: Encoding::Pcm16, sample_rate: 8000, channels: 2 };
    write_wav(&root.join(name), format, &[keys.clone(), agent[..keys.len()].to_vec()]);
    files.push(PathBuf::from(name));
    // Captures: Ethernet/IPv4 pcap, and Linux cooked/IPv6 as pcapng (a name that says neither).
    let call = keyed_call(false, true);
    std::fs::create_dir_all(root.join("captures")).unwrap();
    write_pcap(&root.join("captures/call-v4.pcap"), false, &call.frames);
    files.push(PathBuf::from("captures/call-v4.pcap"));
    let v6 = tmp("call-v6.pcap");
    write_pcap(&v6, true, &keyed_call(true, true).frames);
    tools::run(Command::new("editcap").args(["-F", "pcapng"]).arg(&v6).arg(root.join("captures/call-v6.dump")));
    files.push(PathBuf::from("captures/call-v6.dump"));
    files.sort();
    files
}

/// Checks one scrubbed capture: no key in its audio, events or SIP INFO.
fn capture_is_clean(path: &Path, tag: &str) {
    let bytes = std::fs::read(path).unwrap();
    let c = Capture::parse(&bytes).unwrap();
    let mut audio = Vec::new();
    let mut events = 0;
    for r in &c.records {
        let frame = &bytes[r.data.clone()];
        let Some(u) = find_udp(r.link_type, frame) else { continue };
        let payload = &frame[u.payload.clone()];
        assert!(!String::from_utf8_lossy(payload).contains("Signal=4"), "{tag}: SIP INFO keeps its key");
        let Ok(h) = RtpHeader::parse(payload) else { continue };
        match h.payload_type {
            8 => audio.extend(h.payload(payload).iter().map(|&a| alaw::decode(a))),
            101 => {
                events += 1;
                assert_eq!(TelephoneEvent::parse(h.payload(payload)).unwrap().event, 15, "{tag}: event neutralised");
            }
            _ => {}
        }
    }
    assert!(events > 0 && audio.len() > 8000 * 5, "{tag}: the call is there");
    for (who, got) in reads(8000, &audio, tag) {
        assert_eq!(got, "", "{tag}: {who} reads keys in the scrubbed audio");
    }
}

fn by_event<'a>(lines: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

#[test]
fn an_archive_is_scrubbed_leak_free_with_a_manifest_that_verifies() {
    if !Path::new(DIR).join("g711a.pcap").exists() {
        assert!(std::env::var_os("CI").is_none(), "sip-tester is required in CI");
        eprintln!("SKIPPED: apt-get install sip-tester for its RTP captures");
        return;
    }
    for t in ["editcap", "sox", "espeak-ng", "multimon-ng", "dtmf2num"] {
        if !tools::require(t, "the scrub acceptance test") {
            return;
        }
    }
    let root = tmp("archive");
    let _ = std::fs::remove_dir_all(&root);
    let files = build_tree(&root);
    let out = tmp("out");
    let _ = std::fs::remove_dir_all(&out);
    let key = tmp("manifest.key");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(tmp("manifest.key.pub"));
    assert_eq!(cardveil(&["keygen", p(&key)]).1, 0);
    let public = tmp("manifest.key.pub");

    // The first run: every file scrubbed, one manifest entry each.
    let (lines, code) = cardveil(&["scrub", p(&root), "--out-dir", p(&out), "--jobs", "2", "--signing-key", p(&key)]);
    assert_eq!(code, 0, "{lines:?}");
    let scrubbed = by_event(&lines, "scrubbed");
    assert_eq!(scrubbed.len(), files.len(), "{lines:?}");
    for l in &scrubbed {
        assert_eq!(l["self_check"], "pass");
        assert!(l["keys"].as_u64().unwrap() >= 16, "{l}: the keys were found");
    }
    let manifest = out.join("manifest.jsonl");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(text.lines().count(), files.len());
    let mut formats: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["format"].as_str().unwrap().to_owned())
        .collect();
    formats.sort();
    assert_eq!(formats, ["pcap", "pcapng", "wav", "wav", "wav", "wav", "wav"], "recognised by content");
    assert!(!text.contains("4111") && !text.contains("\"digit\""), "the manifest holds no key");

    // Every output leak-free, in the same format as its input.
    for f in &files {
        let (input, output) = (root.join(f), out.join(f));
        let tag = f.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(std::fs::read(&input).unwrap()[..4], std::fs::read(&output).unwrap()[..4], "{tag}: format kept");
        if f.starts_with("captures") {
            capture_is_clean(&output, &tag);
            continue;
        }
        let (rate, before) = channels(&input);
        let (_, after) = channels(&output);
        assert_eq!(decode_cardveil(rate, &before[0]), "4111111111111111#1229#123#", "{tag}: the input is keyed");
        // The keyed card is at the start of the first channel; the rest is speech.
        let keyed = synthesize(rate).0.len();
        for (c, pcm) in after.iter().enumerate() {
            // The background alone: the input with the keyed stretch silenced. A
            // decoder may read in the output what it reads in that (dtmf2num's
            // talk-off in speech), nothing more.
            let mut background = before[c].clone();
            if c == 0 {
                background[..keyed].fill(0);
            }
            let alone = reads(rate, &background, &format!("{tag}-{c}-bg"));
            for ((who, got), (_, base)) in reads(rate, pcm, &format!("{tag}-{c}")).into_iter().zip(alone) {
                assert_eq!(got, base, "{tag} channel {c}: {who} reads more in the output than in the background");
                assert!(!base.contains("4111"), "{tag}: the background has no card");
            }
        }
    }

    // A second run skips everything and leaves the manifest alone.
    let (again, code) = cardveil(&["scrub", p(&root), "--out-dir", p(&out), "--signing-key", p(&key)]);
    assert_eq!(code, 0, "{again:?}");
    assert_eq!(by_event(&again, "skipped").len(), files.len(), "{again:?}");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), text);

    // verify: holds; one byte of one output changed, it does not; undone, it does.
    let verify = || cardveil(&["verify", "--manifest", p(&manifest), "--public-key", p(&public)]);
    let (v, code) = verify();
    assert_eq!(code, 0, "{v:?}");
    assert_eq!(v.last().unwrap()["entries"], files.len());
    let victim = out.join(&files[0]);
    let original = std::fs::read(&victim).unwrap();
    let mut changed = original.clone();
    let at = changed.len() / 2;
    changed[at] ^= 0x01;
    std::fs::write(&victim, &changed).unwrap();
    let (v, code) = verify();
    assert_eq!(code, 1);
    let failed = by_event(&v, "failed");
    assert_eq!(failed.len(), 1, "{v:?}");
    assert_eq!(failed[0]["output"], files[0].to_str().unwrap());
    assert!(failed[0]["error"].as_str().unwrap().contains("SHA-256"), "{v:?}");
    std::fs::write(&victim, &original).unwrap();
    assert_eq!(verify().1, 0);
    // A manifest line edited: its signature fails (and the chain at the next line).
    let edited = text.replacen("\"masked_spans\":", "\"masked_spans\":1", 1);
    std::fs::write(&manifest, &edited).unwrap();
    let (v, code) = verify();
    assert_eq!(code, 1);
    assert!(by_event(&v, "failed").iter().any(|l| l["error"].as_str().unwrap().contains("signature")), "{v:?}");
    // Without the public key the edit still breaks the chain at the next line.
    let (v, code) = cardveil(&["verify", "--manifest", p(&manifest)]);
    assert_eq!(code, 1);
    assert!(by_event(&v, "failed").iter().any(|l| l["error"].as_str().unwrap().contains("chain")), "{v:?}");
    std::fs::write(&manifest, &text).unwrap();
    assert_eq!(verify().1, 0);

    // Two shards, one job each: disjoint, together the whole, the same bytes.
    let sharded = tmp("sharded");
    let _ = std::fs::remove_dir_all(&sharded);
    let mut taken = Vec::new();
    for k in 0..2 {
        let shard = format!("{k}/2");
        let (lines, code) = cardveil(&["scrub", p(&root), "--out-dir", p(&sharded), "--jobs", "1", "--shard", &shard]);
        assert_eq!(code, 0, "{lines:?}");
        let m = std::fs::read_to_string(sharded.join(format!("manifest-{k}-of-2.jsonl"))).unwrap();
        let outputs: Vec<String> = m
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["output"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(outputs.len(), by_event(&lines, "scrubbed").len());
        taken.extend(outputs);
    }
    taken.sort();
    let all: Vec<String> = files.iter().map(|f| f.to_str().unwrap().to_owned()).collect();
    assert_eq!(taken, all, "every file in exactly one shard");
    for f in &files {
        assert!(std::fs::read(sharded.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(), "{f:?}: same bytes");
    }
}

#[test]
fn files_that_are_not_recordings_or_are_cut_short_fail_alone() {
    let root = tmp("bad");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let (pcm, _) = synthesize(8000);
    let format = WavFormat { encoding: Encoding::Pcm16, sample_rate: 8000, channels: 1 };
    write_wav(&root.join("good.wav"), format, std::slice::from_ref(&pcm));
    write_wav(&root.join("sub/cut.wav"), format, &[pcm]);
    let cut = std::fs::read(root.join("sub/cut.wav")).unwrap();
    std::fs::write(root.join("sub/cut.wav"), &cut[..cut.len() / 2]).unwrap();
    std::fs::write(root.join("notes.txt"), "call notes").unwrap();
    std::os::unix::fs::symlink(root.join("sub"), root.join("loop")).unwrap();
    let out = tmp("bad-out");
    let _ = std::fs::remove_dir_all(&out);
    let (lines, code) = cardveil(&["scrub", p(&root), "--out-dir", p(&out)]);
    assert_eq!(code, 1, "{lines:?}");
    let failed = by_event(&lines, "failed");
    let why = |name: &str| {
        failed
            .iter()
            .find(|l| l["input"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not reported: {lines:?}"))["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(why("notes.txt").contains("not a recording"), "{lines:?}");
    assert!(why("cut.wav").contains("truncated WAV data"), "{lines:?}");
    assert!(why("loop").contains("symbolic link to a directory"), "{lines:?}");
    assert_eq!(failed.len(), 3);
    assert_eq!(by_event(&lines, "scrubbed").len(), 1);
    let summary = lines.last().unwrap();
    assert_eq!((summary["files"].as_u64(), summary["failed"].as_u64()), (Some(4), Some(3)), "{summary}");
    // Nothing of the failed files is left: no output, no temporary.
    let mut left: Vec<String> = Vec::new();
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                left.push(e.path().strip_prefix(&out).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    left.sort();
    assert_eq!(left, ["good.wav", "manifest.jsonl"]);
    // Two inputs that would land on one output are refused before any work.
    std::fs::create_dir_all(root.join("other")).unwrap();
    std::fs::copy(root.join("good.wav"), root.join("other/good.wav")).unwrap();
    let (_, code) =
        cardveil(&["scrub", p(&root.join("good.wav")), p(&root.join("other/good.wav")), "--out-dir", p(&out)]);
    assert_eq!(code, 2);
    assert_eq!(cardveil(&["scrub", p(&root), "--out-dir", p(&out), "--shard", "2/2"]).1, 2);
    assert_eq!(cardveil(&["scrub", p(&root), "--out-dir", p(&out), "--jobs", "0"]).1, 2);
    // A manifest kept inside the input tree is not taken for input, on this run or the next.
    let tree = root.join("other");
    let manifest = tree.join("manifest.jsonl");
    for skipped in [0, 1] {
        let (lines, code) =
            cardveil(&["scrub", p(&tree), "--out-dir", p(&tmp("other-out")), "--manifest", p(&manifest)]);
        assert_eq!(code, 0, "{lines:?}");
        assert_eq!(lines.len(), 2, "one file and the summary: {lines:?}");
        assert_eq!(by_event(&lines, "skipped").len(), skipped);
    }
}
