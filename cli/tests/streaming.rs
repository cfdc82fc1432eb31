//! `detect` and `mask` stream: peak memory does not grow with the input
//! (2 h and 8 h of audio, and 2 h of 16 kHz stereo), `-` is standard input
//! and output, a WAV of unknown length arriving on a pipe is read to its
//! end, and the output is the same bytes whichever way the audio came.
//!
//! Peak memory is each run's maximum resident set, as GNU time reports it.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{bin, tmp};

use cardveil_cli::example::synthesize;
use cardveil_core::codec::wav::{self, WavFormat};
use cardveil_core::codec::{Encoding, ulaw};

/// Peak RSS limits of SPEC's remediation issue, in KiB.
const DETECT_LIMIT_KIB: i64 = 32 * 1024;
const MASK_LIMIT_KIB: i64 = 64 * 1024;

/// The data of `seconds` of audio in `format`: the example card (keys,
/// pauses, line noise) over and over, the second channel a few seconds
/// behind the first.
fn block(format: WavFormat) -> Vec<u8> {
    let (pcm, _) = synthesize(format.sample_rate);
    let shift = pcm.len() / 3;
    let mut data = Vec::new();
    for i in 0..pcm.len() {
        for c in 0..format.channels as usize {
            let s = pcm[(i + c * shift) % pcm.len()];
            match format.encoding {
                Encoding::Pcm16 => data.extend_from_slice(&s.to_le_bytes()),
                _ => data.push(ulaw::encode(s)),
            }
        }
    }
    data
}

/// Bytes of data in `hours` of `format`, in whole blocks.
fn blocks_for(format: WavFormat, hours: f64, block: &[u8]) -> usize {
    let bytes_per_second = format.sample_rate as usize * format.frame_bytes();
    (hours * 3600.0 * bytes_per_second as f64 / block.len() as f64).ceil() as usize
}

/// Writes a WAV stream of `n` blocks to `w`; the header says the length,
/// or (`known` false) that it is not known, as a pipe's writer does.
fn write_stream(w: &mut dyn Write, format: WavFormat, block: &[u8], n: usize, known: bool) -> std::io::Result<()> {
    let header =
        if known { wav::header(format, (block.len() * n) as u32) } else { wav::header_of_unknown_length(format) };
    w.write_all(&header)?;
    for _ in 0..n {
        w.write_all(block)?;
    }
    if known && (block.len() * n) % 2 == 1 {
        w.write_all(&[0])?; // chunks are padded to an even length
    }
    Ok(())
}

/// Runs `cardveil` with `args` to its end under GNU time (if installed),
/// feeding it `feed` on stdin if given; its exit status, stdout, stderr and
/// peak RSS in KiB (0 without GNU time: see [`can_measure`]). (Under time, not straight from this process: a child spawned
/// here starts its `ru_maxrss` at this process's high-water mark, which
/// writing the test files raises; time's own child starts from time's.)
fn run_measured(args: &[&OsStr], feed: Feed<'_>) -> (i32, Vec<u8>, String, i64) {
    let time = Path::new("/usr/bin/time");
    let measured = time.exists();
    let report = tmp("streaming", &format!("rss-{:?}", std::thread::current().id()));
    let mut cmd = if measured {
        let mut cmd = Command::new(time);
        cmd.args(["-f", "%M", "-o"]).arg(&report).arg(env!("CARGO_BIN_EXE_cardveil"));
        cmd
    } else {
        Command::new(env!("CARGO_BIN_EXE_cardveil"))
    };
    cmd.args(args);
    cmd.stdin(if feed.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).unwrap();
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    if let (Some(feed), Some(mut stdin)) = (feed, child.stdin.take()) {
        // The child may stop reading early (an error): a broken pipe is its answer, not ours.
        let _ = feed(&mut stdin);
    }
    let status = child.wait().unwrap();
    let mut stderr = err_reader.join().unwrap();
    // time adds a line of its own when the command fails.
    if !status.success() {
        stderr = stderr
            .lines()
            .filter(|l| !l.starts_with("Command exited with non-zero status"))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    let kib = if measured {
        let text = std::fs::read_to_string(&report).unwrap();
        std::fs::remove_file(&report).unwrap();
        text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("time wrote {text:?}"))
    } else {
        0
    };
    (status.code().unwrap_or(-1), reader.join().unwrap(), stderr, kib)
}

/// Whether peak memory can be measured (GNU time): required in CI.
fn can_measure() -> bool {
    if Path::new("/usr/bin/time").exists() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "GNU time is required in CI (apt-get install time)");
    eprintln!("SKIPPED the peak-memory checks: apt-get install time");
    false
}

/// What a run is fed on stdin, if anything.
type Feed<'a> = Option<&'a dyn Fn(&mut dyn Write) -> std::io::Result<()>>;

fn mono(encoding: Encoding, rate: u32) -> WavFormat {
    WavFormat { encoding, sample_rate: rate, channels: 1 }
}

/// `args` as the OS strings a command takes.
fn os<'a>(args: &'a [&'a (impl AsRef<OsStr> + ?Sized)]) -> Vec<&'a OsStr> {
    args.iter().map(|a| a.as_ref()).collect()
}

#[test]
fn memory_does_not_grow_with_the_input() {
    if !can_measure() {
        return;
    }
    let f8 = mono(Encoding::Pcm16, 8000);
    let b8 = block(f8);
    // A 2-hour file on disk, read by name.
    let two_hours = tmp("streaming", "two-hours.wav");
    let n2 = blocks_for(f8, 2.0, &b8);
    write_stream(&mut std::io::BufWriter::new(std::fs::File::create(&two_hours).unwrap()), f8, &b8, n2, true).unwrap();
    let masked = tmp("streaming", "two-hours.masked.wav");
    let mut rows = Vec::new();
    let mut check = |what: &str, args: &[&OsStr], feed: Feed<'_>, limit: i64| {
        let (code, stdout, stderr, kib) = run_measured(args, feed);
        assert_eq!(code, 0, "{what}: {stderr}");
        // With `-o -` the audio takes stdout and the lines go to stderr.
        let to_stdout = args.ends_with(&[OsStr::new("-o"), OsStr::new("-")]);
        let lines = if to_stdout { stderr.lines().count() } else { String::from_utf8_lossy(&stdout).lines().count() };
        rows.push(format!("{what}: peak RSS {:.1} MiB, {lines} lines", kib as f64 / 1024.0));
        assert!(kib <= limit, "{what}: peak RSS {kib} KiB over {limit} KiB");
        (lines, stdout)
    };
    let (keys2, _) =
        check("detect, 2 h file", &os(&[OsStr::new("detect"), two_hours.as_os_str()]), None, DETECT_LIMIT_KIB);
    let args = [OsStr::new("mask"), two_hours.as_os_str(), OsStr::new("-o"), masked.as_os_str()];
    let (spans2, _) = check("mask, 2 h file", &args, None, MASK_LIMIT_KIB);
    assert!(keys2 > 1000 && spans2 >= keys2, "keys {keys2}, spans {spans2}");
    assert_eq!(std::fs::metadata(&masked).unwrap().len(), std::fs::metadata(&two_hours).unwrap().len());
    std::fs::remove_file(&two_hours).unwrap();
    std::fs::remove_file(&masked).unwrap();

    // 8 hours through a pipe, length unknown.
    let n8 = blocks_for(f8, 8.0, &b8);
    let feed8 = |w: &mut dyn Write| write_stream(w, f8, &b8, n8, false);
    let (keys8, _) = check("detect, 8 h pipe", &os(&["detect", "-"]), Some(&feed8), DETECT_LIMIT_KIB);
    check("mask, 8 h pipe", &os(&["mask", "-", "-o", "/dev/null"]), Some(&feed8), MASK_LIMIT_KIB);
    // The same keys per block over 8 hours as over 2.
    let (per8, per2) = (keys8 as f64 / n8 as f64, keys2 as f64 / n2 as f64);
    assert!((per8 - per2).abs() < 0.01 * per2, "8 h: {keys8} keys in {n8} blocks, 2 h: {keys2} in {n2}");
    // 2 h of 16 kHz stereo with a length; masked to stdout.
    let fs = WavFormat { encoding: Encoding::Pcm16, sample_rate: 16000, channels: 2 };
    let bs = block(fs);
    let ns = blocks_for(fs, 2.0, &bs);
    let feeds = |w: &mut dyn Write| write_stream(w, fs, &bs, ns, true);
    check("detect, 2 h 16 kHz stereo pipe", &os(&["detect", "-"]), Some(&feeds), DETECT_LIMIT_KIB);
    let (spans, audio) =
        check("mask, 2 h 16 kHz stereo pipe to stdout", &os(&["mask", "-", "-o", "-"]), Some(&feeds), MASK_LIMIT_KIB);
    // The audio on stdout (a header of unknown length, every sample), the lines on stderr.
    assert_eq!(audio.len(), wav::header_of_unknown_length(fs).len() + bs.len() * ns);
    assert!(spans > 1000);
    println!("{}", rows.join("\n"));
}

#[test]
fn a_pipe_gives_the_same_output_as_a_file() {
    let formats = [
        mono(Encoding::Pcm16, 8000),
        mono(Encoding::Ulaw, 8000),
        WavFormat { channels: 2, ..mono(Encoding::Pcm16, 16000) },
    ];
    for format in formats {
        let b = block(format);
        let name = format!("{:?}-{}-{}", format.encoding, format.sample_rate, format.channels);
        let input = tmp("streaming", &format!("{name}.wav"));
        let mut file = Vec::new();
        write_stream(&mut file, format, &b, 3, true).unwrap();
        std::fs::write(&input, &file).unwrap();
        let by_name = tmp("streaming", &format!("{name}.by-name.wav"));
        let out = bin().arg("mask").arg(&input).arg("-o").arg(&by_name).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stdout.is_empty());
        let expected = std::fs::read(&by_name).unwrap();
        assert_eq!(expected.len(), file.len());
        // Unknown length on stdin, written to a file: the header is put right.
        let by_pipe = tmp("streaming", &format!("{name}.by-pipe.wav"));
        let feed = |w: &mut dyn Write| write_stream(w, format, &b, 3, false);
        let args = [OsStr::new("mask"), OsStr::new("-"), OsStr::new("-o"), by_pipe.as_os_str()];
        let (code, stdout, stderr, _) = run_measured(&args, Some(&feed));
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(std::fs::read(&by_pipe).unwrap(), expected, "{name}: pipe in, file out");
        assert_eq!(stdout, out.stdout, "{name}: the same span lines");
        // Both ends pipes: the same samples after a header of unknown length.
        let (code, stdout, stderr, _) = run_measured(&os(&["mask", "-", "-o", "-"]), Some(&feed));
        assert_eq!(code, 0, "{stderr}");
        let h = wav::header_of_unknown_length(format).len();
        let w = wav::parse(&expected).unwrap();
        assert_eq!(&stdout[h..], w.data, "{name}: pipe in, pipe out");
        assert_eq!(stderr.as_bytes(), &out.stdout[..], "{name}: the lines on stderr");
        // detect reads the pipe as it reads the file.
        let by_file = bin().arg("detect").arg(&input).output().unwrap();
        let (code, stdout, _, _) = run_measured(&os(&["detect", "-"]), Some(&feed));
        assert_eq!(code, 0);
        assert_eq!(stdout, by_file.stdout, "{name}: detect");
        assert!(!by_file.stdout.is_empty());
        for p in [&input, &by_name, &by_pipe] {
            std::fs::remove_file(p).unwrap();
        }
    }
}

#[test]
fn a_pipe_cut_short_fails_and_leaves_no_file() {
    let format = mono(Encoding::Pcm16, 8000);
    let b = block(format);
    let out = tmp("streaming", "cut.wav");
    // The header claims three blocks; two arrive.
    let feed = |w: &mut dyn Write| {
        w.write_all(&wav::header(format, (b.len() * 3) as u32))?;
        w.write_all(&b)?;
        w.write_all(&b)
    };
    let args = [OsStr::new("mask"), OsStr::new("-"), OsStr::new("-o"), out.as_os_str()];
    let (code, _, stderr, _) = run_measured(&args, Some(&feed));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("truncated WAV data") && stderr.lines().count() == 1, "{stderr}");
    assert!(!out.exists());
    let dir = out.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("cut.wav"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Not a WAV at all, on stdin.
    let (code, stdout, stderr, _) =
        run_measured(&os(&["detect", "-"]), Some(&|w: &mut dyn Write| w.write_all(b"ID3 an mp3")));
    assert_eq!((code, stdout.len()), (1, 0));
    assert!(stderr.starts_with("cardveil: error: -: not a WAV file"), "{stderr}");
}

/// An Ethernet/IPv4/UDP frame 10.0.0.1:5000 → 10.0.0.2:2006 around `payload`
/// (UDP checksum 0: none, as IPv4 allows).
fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&5000u16.to_be_bytes());
    f.extend_from_slice(&2006u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_two_hour_capture_is_scrubbed_in_bounded_memory() {
    if !can_measure() {
        return;
    }
    // One PCMU stream, 20 ms packets, the example card over and over: 2 h, 360,000 packets.
    let (pcm, _) = synthesize(8000);
    let audio: Vec<u8> = pcm.iter().map(|&s| ulaw::encode(s)).collect();
    let packets = 2 * 3600 * 50;
    let input = tmp("streaming", "two-hours.pcap");
    let output = tmp("streaming", "two-hours.scrubbed.pcap");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let mut header = vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0];
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&65535u32.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        w.write_all(&header).unwrap();
        for k in 0..packets {
            let at = (k * 160) % (audio.len() - 160);
            let mut rtp = vec![0x80, 0];
            rtp.extend_from_slice(&(k as u16).to_be_bytes());
            rtp.extend_from_slice(&((k * 160) as u32).to_be_bytes());
            rtp.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            rtp.extend_from_slice(&audio[at..at + 160]);
            let f = udp_frame(&rtp);
            let us = k as u64 * 20_000;
            for v in [(us / 1_000_000) as u32, (us % 1_000_000) as u32, f.len() as u32, f.len() as u32] {
                w.write_all(&v.to_le_bytes()).unwrap();
            }
            w.write_all(&f).unwrap();
        }
    }
    let args = [OsStr::new("pcap"), input.as_os_str(), OsStr::new("-o"), output.as_os_str()];
    let (code, stdout, stderr, kib) = run_measured(&args, None);
    assert_eq!(code, 0, "{stderr}");
    let size = std::fs::metadata(&input).unwrap().len();
    println!("pcap, 2 h capture ({} MB): peak RSS {:.1} MiB", size >> 20, kib as f64 / 1024.0);
    assert!(kib <= MASK_LIMIT_KIB, "pcap: peak RSS {kib} KiB over {MASK_LIMIT_KIB} KiB");
    let text = String::from_utf8(stdout).unwrap();
    let summary = text.lines().last().unwrap();
    assert!(summary.contains(&format!("\"packets_in\":{packets},\"packets_out\":{packets}")), "{summary}");
    assert!(text.lines().filter(|l| l.contains("\"event\":\"key\"")).count() > 10_000, "the keys were found");
    assert_eq!(std::fs::metadata(&output).unwrap().len(), size);
    std::fs::remove_file(&input).unwrap();
    std::fs::remove_file(&output).unwrap();
}
