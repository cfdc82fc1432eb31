//! `cardveil scrub` killed (`kill -9`) part-way through a tree resumes:
//! the re-run skips what the first run finished, does the rest, leaves no
//! temporary behind, and the manifest holds one entry per file and
//! verifies.

mod common;

use std::io::BufRead;
use std::process::Stdio;

use common::{bin, tmp, write_wav};

use cardveil_cli::example::synthesize;
use cardveil_core::codec::Encoding;

/// Every file below `dir`, relative, sorted.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_killed_scrub_resumes_where_it_stopped() {
    let root = tmp("resume", "archive");
    let out = tmp("resume", "out");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&out);
    // Eight files of ten minutes: the example card over and over (each takes
    // long enough that the kill usually lands in the middle of one).
    let (pcm, _) = synthesize(8000);
    let long: Vec<i16> = pcm.iter().copied().cycle().take(600 * 8000).collect();
    let names: Vec<String> = (0..8).map(|i| format!("day-{}/call-{i}.wav", i % 2)).collect();
    for n in &names {
        let path = root.join(n);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_wav(&path, Encoding::Pcm16, 8000, std::slice::from_ref(&long));
    }
    let args = |cmd: &mut std::process::Command| {
        cmd.arg("scrub").arg(&root).arg("--out-dir").arg(&out).args(["--jobs", "1"]);
    };

    // The first run, killed once two files are done.
    let mut cmd = bin();
    args(&mut cmd);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut done = Vec::new();
    while done.len() < 2 {
        let line = lines.next().expect("the run ended before two files were done").unwrap();
        assert!(line.contains(r#""event":"scrubbed""#), "{line}");
        done.push(line);
    }
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let manifest = out.join("manifest.jsonl");
    let entries = std::fs::read_to_string(&manifest).unwrap().lines().count();
    let left = files(&out).iter().filter(|f| f.contains(".cardveil-tmp-")).count();
    println!("after the kill: {entries} manifest entries, {left} temporaries");
    assert!((2..8).contains(&entries), "{entries} entries after the kill");

    // The re-run: the finished files skipped, the rest done, nothing left over.
    let mut cmd = bin();
    args(&mut cmd);
    let second = cmd.output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let text = String::from_utf8(second.stdout).unwrap();
    let skipped = text.lines().filter(|l| l.contains(r#""event":"skipped""#)).count();
    let scrubbed = text.lines().filter(|l| l.contains(r#""event":"scrubbed""#)).count();
    assert_eq!((skipped, skipped + scrubbed), (entries, 8), "{text}");
    for line in &done {
        let output = common::json(line)["output"].as_str().unwrap().to_owned();
        assert!(text.lines().any(|l| l.contains(r#""event":"skipped""#) && l.contains(&output)), "{output} again");
    }
    let mut want: Vec<String> = names.clone();
    want.push("manifest.jsonl".into());
    want.sort();
    assert_eq!(files(&out), want, "every output, the manifest, and no temporary");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap().lines().count(), 8);
    let verify = bin().arg("verify").arg("--manifest").arg(&manifest).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}
