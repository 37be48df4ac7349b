/work/main/vendor/whisper-rs-sys/target/release/deps/cfg_if-c5a670ea38c3355f.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.4/src/lib.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libcfg_if-c5a670ea38c3355f.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.4/src/lib.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libcfg_if-c5a670ea38c3355f.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.4/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.4/src/lib.rs:
