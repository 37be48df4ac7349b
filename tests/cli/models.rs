//! `tolk models`: list, the no-op second fetch, import of a real ggml file, verify.

use crate::util::*;

#[test]
fn list_shows_catalog_and_cache_state() {
    model("base");
    let dir = tempfile::tempdir().unwrap();
    let out = success(tolk(dir.path()).args(["models", "list"]).output().unwrap());
    let base = out
        .lines()
        .find(|l| l.starts_with("base "))
        .expect("base listed");
    assert!(
        base.contains("multilingual") && base.contains("fetched"),
        "{base}"
    );
    assert!(out
        .lines()
        .any(|l| l.starts_with("tiny.en ") && l.contains("English")));
}

#[test]
fn second_fetch_is_a_no_op() {
    let path = model("base");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = success(
        tolk(dir.path())
            .args(["models", "fetch", "base"])
            .output()
            .unwrap(),
    );
    assert!(out.contains("already present, sha256 ok"), "{out}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before,
        "file untouched"
    );
}

/// A user brings `ggml-tiny.en.bin` from elsewhere: import checks it, names it from its
/// header, and `verify` then checks the cache.
#[test]
fn import_then_verify() {
    let src_dir = tempfile::tempdir().unwrap();
    let brought = src_dir.path().join("downloaded-model.bin");
    std::fs::copy(model("tiny.en"), &brought).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        tolk(src_dir.path())
            .env("TOLK_CACHE_DIR", cache.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = success(run(&["models", "import", brought.to_str().unwrap()]));
    assert!(out.contains("as `tiny.en`"), "{out}");
    let stored = cache.path().join("models/ggml-tiny.en.bin");
    assert_eq!(
        std::fs::read(&stored).unwrap().len(),
        std::fs::metadata(&brought).unwrap().len() as usize
    );
    let out = success(run(&["models", "verify"]));
    assert!(
        out.contains("ok    tiny.en") && out.contains("sha256 matches"),
        "{out}"
    );

    // Flip one byte in the middle of the weights: verify must notice and fail.
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&stored, bytes).unwrap();
    let out = run(&["models", "verify"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL  tiny.en") && text.contains("sha256 mismatch"),
        "{text}"
    );
}
