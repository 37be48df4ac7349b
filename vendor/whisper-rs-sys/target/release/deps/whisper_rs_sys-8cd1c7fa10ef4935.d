/work/main/vendor/whisper-rs-sys/target/release/deps/whisper_rs_sys-8cd1c7fa10ef4935.d: src/lib.rs /work/main/vendor/whisper-rs-sys/target/release/build/whisper-rs-sys-6aa757873581a4b2/out/bindings.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libwhisper_rs_sys-8cd1c7fa10ef4935.rlib: src/lib.rs /work/main/vendor/whisper-rs-sys/target/release/build/whisper-rs-sys-6aa757873581a4b2/out/bindings.rs

/work/main/vendor/whisper-rs-sys/target/release/deps/libwhisper_rs_sys-8cd1c7fa10ef4935.rmeta: src/lib.rs /work/main/vendor/whisper-rs-sys/target/release/build/whisper-rs-sys-6aa757873581a4b2/out/bindings.rs

src/lib.rs:
/work/main/vendor/whisper-rs-sys/target/release/build/whisper-rs-sys-6aa757873581a4b2/out/bindings.rs:

# env-dep:OUT_DIR=/work/main/vendor/whisper-rs-sys/target/release/build/whisper-rs-sys-6aa757873581a4b2/out
