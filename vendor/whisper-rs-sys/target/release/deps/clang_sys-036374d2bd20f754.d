/work/main/vendor/whisper-rs-sys/target/release/deps/clang_sys-036374d2bd20f754.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/support.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/link.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/macros.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/common.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/dynamic.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libclang_sys-036374d2bd20f754.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/support.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/link.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/macros.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/common.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/dynamic.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libclang_sys-036374d2bd20f754.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/support.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/link.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/macros.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/common.rs /work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/dynamic.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/support.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/clang-sys-1.8.1/src/link.rs:
/work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/macros.rs:
/work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/common.rs:
/work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out/dynamic.rs:

# env-dep:OUT_DIR=/work/main/vendor/whisper-rs-sys/target/release/build/clang-sys-b998f99a0b024cca/out
