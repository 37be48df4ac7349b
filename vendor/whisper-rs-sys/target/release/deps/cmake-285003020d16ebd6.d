/work/main/vendor/whisper-rs-sys/target/release/deps/cmake-285003020d16ebd6.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cmake-0.1.57/src/lib.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libcmake-285003020d16ebd6.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cmake-0.1.57/src/lib.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libcmake-285003020d16ebd6.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cmake-0.1.57/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cmake-0.1.57/src/lib.rs:
