/work/main/vendor/whisper-rs-sys/target/release/deps/glob-f93a1c7ceafdeff5.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/glob-0.3.3/src/lib.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libglob-f93a1c7ceafdeff5.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/glob-0.3.3/src/lib.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libglob-f93a1c7ceafdeff5.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/glob-0.3.3/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/glob-0.3.3/src/lib.rs:
