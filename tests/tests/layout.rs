//! The README's "Layout" section matches the tree: every top-level
//! directory is listed and every listed one exists; every module of
//! `core/src` and every source file of `ffi/src` is named.

use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace")
}

/// The fenced block under `## Layout`.
fn layout_block() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = readme.split("\n## Layout\n").nth(1).expect("a Layout section");
    let block = section.split("```").nth(1).expect("a fenced block in the Layout section");
    block.to_owned()
}

fn names(dir: &Path, keep: impl Fn(&std::fs::DirEntry) -> bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry"))
        .filter(keep)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_readme_layout_matches_the_tree() {
    let block = layout_block();
    let listed: Vec<&str> = block
        .lines()
        .filter_map(|l| l.split_whitespace().next().filter(|w| w.ends_with('/') && !l.starts_with(' ')))
        .collect();
    let is_dir = |e: &std::fs::DirEntry| e.file_type().is_ok_and(|t| t.is_dir());
    let top =
        names(root(), |e| is_dir(e) && !e.file_name().to_string_lossy().starts_with('.') && e.file_name() != "target");
    for d in &top {
        assert!(listed.contains(&format!("{d}/").as_str()), "{d}/ is in the tree but not in the README's layout");
    }
    for d in &listed {
        assert!(root().join(d).is_dir(), "the README's layout lists {d}, which is not in the tree");
    }
    for m in names(&root().join("core/src"), is_dir) {
        assert!(block.contains(&format!("{m}/")), "core/src/{m}/ is not named in the README's layout");
    }
    for f in names(&root().join("ffi/src"), |e| !is_dir(e)) {
        if f != "lib.rs" {
            assert!(block.contains(&f), "ffi/src/{f} is not named in the README's layout");
        }
    }
}
