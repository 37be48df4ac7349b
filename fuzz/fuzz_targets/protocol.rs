//! The caption protocol's client messages (`docs/protocol.md`) and a booth's hello: any text
//! is parsed to a message or refused with an error, never a panic; a hello's format and rate
//! are checked without panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tolk::server::wire::{ClientMessage, IngestMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_json::from_str::<ClientMessage>(text);
    if let Ok(h) = serde_json::from_str::<IngestMessage>(text) {
        let IngestMessage::Hello { format, rate } = h;
        // A hello's rate is checked before any audio: a refusal, never a panic.
        let _ = tolk::server::source::FrameDecoder::new(format, rate);
    }
});
