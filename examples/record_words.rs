//! Records the word timings Whisper gives for a whole file (one streaming decode of it), as
//! Rust tuples: the recorded data the policy's unit tests replay.
//! `cargo run --release --example record_words -- MODEL.bin AUDIO.wav LANG`
use tolk::stream::decoder::Decoder;
use tolk::stream::lang::LanguageMode;
use tolk::stream::policy::DecodeJob;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = tolk::transcribe::Model::load(args[1].as_ref()).expect("model");
    let audio = tolk::audio::decode_file(args[2].as_ref())
        .expect("audio")
        .samples;
    let mut dec = Decoder::new(&model, LanguageMode::Fixed(args[3].clone()), 2).expect("state");
    let job = DecodeJob {
        id: 0,
        start: 0.0,
        audio,
        prompt: String::new(),
        hints: Vec::new(),
        closing: true,
        beam: true,
    };
    for w in dec.decode(&job).expect("decode").words {
        println!("        ({:?}, {:.2}, {:.2}),", w.text, w.start, w.end);
    }
}
