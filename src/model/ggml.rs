//! The ggml model file that whisper.cpp loads: writing it (for the converter) and checking one
//! (for `tolk models import` and before every load, so a bad file is an error, not a crash).
//!
//! Layout, all little-endian:
//! 1. `u32` magic `0x67676d6c` ("ggml");
//! 2. eleven `i32` hyper-parameters (see [`Hparams`]);
//! 3. mel filters: `i32 n_mel`, `i32 n_fft`, `n_mel × n_fft` f32;
//! 4. vocabulary: `i32 count`, then per token `i32 len` and the bytes;
//! 5. tensors, each `i32 n_dims`, `i32 name_len`, `i32 type`, the dims in ggml order (innermost
//!    first, the reverse of PyTorch's), the name, the data.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use half::f16;

/// "ggml" read as a little-endian u32.
pub const MAGIC: u32 = 0x6767_6d6c;

/// whisper.cpp writes quantized files' ftype as `version × 1000 + ftype`.
const QNT_VERSION_FACTOR: i32 = 1000;
const QNT_VERSION: i32 = 2;

/// The weight format of a whole file (ggml's `ggml_ftype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ftype {
    F32,
    F16,
    Q8_0,
}

impl Ftype {
    /// The value stored in the header.
    pub fn header_value(self) -> i32 {
        match self {
            Ftype::F32 => 0,
            Ftype::F16 => 1,
            Ftype::Q8_0 => QNT_VERSION * QNT_VERSION_FACTOR + 7,
        }
    }

    /// The tensor type used for weight matrices in a file of this ftype.
    pub fn weight_type(self) -> TensorType {
        match self {
            Ftype::F32 => TensorType::F32,
            Ftype::F16 => TensorType::F16,
            Ftype::Q8_0 => TensorType::Q8_0,
        }
    }

    /// The tensor type whisper.cpp expects for convolution weights.
    pub fn conv_type(self) -> TensorType {
        match self {
            Ftype::F32 => TensorType::F32,
            _ => TensorType::F16,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ftype::F32 => "f32",
            Ftype::F16 => "f16",
            Ftype::Q8_0 => "q8_0",
        }
    }
}

/// A tensor's element type (ggml's `ggml_type`), with the block layout needed to size it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl TensorType {
    pub fn code(self) -> i32 {
        match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
            TensorType::Q4_0 => 2,
            TensorType::Q4_1 => 3,
            TensorType::Q5_0 => 6,
            TensorType::Q5_1 => 7,
            TensorType::Q8_0 => 8,
        }
    }

    pub fn from_code(code: i32) -> Option<TensorType> {
        Some(match code {
            0 => TensorType::F32,
            1 => TensorType::F16,
            2 => TensorType::Q4_0,
            3 => TensorType::Q4_1,
            6 => TensorType::Q5_0,
            7 => TensorType::Q5_1,
            8 => TensorType::Q8_0,
            _ => return None,
        })
    }

    /// (elements per block, bytes per block).
    fn block(self) -> (usize, usize) {
        match self {
            TensorType::F32 => (1, 4),
            TensorType::F16 => (1, 2),
            TensorType::Q4_0 => (32, 18),
            TensorType::Q4_1 => (32, 20),
            TensorType::Q5_0 => (32, 22),
            TensorType::Q5_1 => (32, 24),
            TensorType::Q8_0 => (32, 34),
        }
    }

    /// Bytes taken by a row-major tensor of `n` elements whose rows are `row` long.
    pub fn data_size(self, n: usize, row: usize) -> Option<usize> {
        let (blk, bytes) = self.block();
        if row % blk != 0 {
            return None;
        }
        Some(n / blk * bytes)
    }
}

/// The eleven header integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

impl Hparams {
    fn to_array(self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    fn from_array(a: [i32; 11]) -> Hparams {
        Hparams {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }

    /// Whether the model is multilingual (English-only models have a 51864-token vocabulary).
    pub fn multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    /// The file's ftype, decoded from the header value.
    pub fn file_type(&self) -> Option<Ftype> {
        match self.ftype % QNT_VERSION_FACTOR {
            0 => Some(Ftype::F32),
            1 => Some(Ftype::F16),
            7 => Some(Ftype::Q8_0),
            _ => None,
        }
    }

    /// The usual name of a model of this size: `tiny`, `base.en`, … (with the ftype suffix for
    /// quantized files), as official file names `ggml-NAME.bin` spell it.
    pub fn canonical_name(&self) -> String {
        let size = match (self.n_audio_layer, self.n_audio_state) {
            (4, 384) => "tiny",
            (6, 512) => "base",
            (12, 768) => "small",
            (24, 1024) => "medium",
            (32, 1280) => "large",
            _ => "custom",
        };
        let mut name = size.to_string();
        if !self.multilingual() {
            name.push_str(".en");
        }
        match self.ftype % QNT_VERSION_FACTOR {
            0 | 1 => {}
            2 => name.push_str("-q4_0"),
            3 => name.push_str("-q4_1"),
            7 => name.push_str("-q8_0"),
            8 => name.push_str("-q5_0"),
            9 => name.push_str("-q5_1"),
            other => name.push_str(&format!("-ftype{other}")),
        }
        name
    }

    /// How many tensors whisper.cpp expects in a file with these dimensions.
    pub fn expected_tensors(&self) -> usize {
        // Encoder: positional embedding, two convolutions (weight and bias each), ln_post
        // (weight and bias), and 15 tensors per block. Decoder: positional and token
        // embeddings, ln (weight and bias), and 24 tensors per block (15 + 9 cross-attention).
        7 + 15 * self.n_audio_layer.max(0) as usize + 4 + 24 * self.n_text_layer.max(0) as usize
    }
}

/// Writes a ggml model file, section by section, in the order the loader reads it.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        Writer { out, written: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn put_i32(&mut self, v: i32) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn header(&mut self, hp: &Hparams) -> io::Result<()> {
        self.put(&MAGIC.to_le_bytes())?;
        for v in hp.to_array() {
            self.put_i32(v)?;
        }
        Ok(())
    }

    pub fn mel_filters(&mut self, n_mel: usize, n_fft: usize, values: &[f32]) -> io::Result<()> {
        assert_eq!(values.len(), n_mel * n_fft, "mel filter bank size");
        self.put_i32(n_mel as i32)?;
        self.put_i32(n_fft as i32)?;
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.put(&bytes)
    }

    pub fn vocabulary(&mut self, tokens: &[Vec<u8>]) -> io::Result<()> {
        self.put_i32(tokens.len() as i32)?;
        for t in tokens {
            self.put_i32(t.len() as i32)?;
            self.put(t)?;
        }
        Ok(())
    }

    /// Writes one tensor. `dims` are in PyTorch order (outermost first); `values` row-major.
    pub fn tensor(
        &mut self,
        name: &str,
        dims: &[usize],
        ttype: TensorType,
        values: &[f32],
    ) -> io::Result<()> {
        let n: usize = dims.iter().product();
        assert_eq!(n, values.len(), "tensor {name}: dims and data disagree");
        self.put_i32(dims.len() as i32)?;
        self.put_i32(name.len() as i32)?;
        self.put_i32(ttype.code())?;
        for &d in dims.iter().rev() {
            self.put_i32(d as i32)?;
        }
        self.put(name.as_bytes())?;
        let data = encode(values, ttype, *dims.last().unwrap_or(&1));
        self.put(&data)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Encodes f32 values as a ggml tensor type. Only the types the converter writes are supported.
fn encode(values: &[f32], ttype: TensorType, row: usize) -> Vec<u8> {
    match ttype {
        TensorType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        TensorType::F16 => values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect(),
        TensorType::Q8_0 => {
            assert_eq!(row % 32, 0, "q8_0 rows must be a multiple of 32");
            quantize_q8_0(values)
        }
        other => unreachable!("the converter never writes {other:?}"),
    }
}

/// ggml's reference q8_0 quantisation: blocks of 32 values, an f16 scale `d = max|x| / 127`
/// and 32 signed bytes `round(x / d)`.
pub fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / 32 * 34);
    for block in values.chunks_exact(32) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&v| (v * id).round() as i8 as u8));
    }
    out
}

/// Why a file is not a usable ggml Whisper model.
#[derive(Debug, thiserror::Error)]
pub enum GgmlError {
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    #[error("not a ggml model (bad magic {0:#010x})")]
    BadMagic(u32),
    #[error("file is empty")]
    Empty,
    #[error("truncated: the file ends inside {0}")]
    Truncated(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
}

/// What a check of a ggml file found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Info {
    pub hparams: Hparams,
    pub n_tokens: usize,
    pub n_tensors: usize,
    pub size: u64,
}

impl Info {
    pub fn canonical_name(&self) -> String {
        self.hparams.canonical_name()
    }
}

fn read_i32(r: &mut impl Read, what: &str) -> Result<i32, GgmlError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => GgmlError::Truncated(what.to_string()),
        _ => GgmlError::Io(e),
    })?;
    Ok(i32::from_le_bytes(b))
}

/// Checks a ggml Whisper model file from end to end without loading its weights: magic,
/// plausible hyper-parameters, mel filters, vocabulary, and every tensor header with its data
/// size, so a truncated or foreign file is refused before whisper.cpp sees it.
pub fn inspect(path: &Path) -> Result<Info, GgmlError> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    if size == 0 {
        return Err(GgmlError::Empty);
    }
    let mut r = BufReader::new(file);
    let magic = read_i32(&mut r, "the magic number")? as u32;
    if magic != MAGIC {
        return Err(GgmlError::BadMagic(magic));
    }
    let mut a = [0i32; 11];
    for v in a.iter_mut() {
        *v = read_i32(&mut r, "the header")?;
    }
    let hp = Hparams::from_array(a);
    let sane = |v: i32, lo: i32, hi: i32| (lo..=hi).contains(&v);
    if !(sane(hp.n_vocab, 1, 1_000_000)
        && sane(hp.n_audio_ctx, 1, 100_000)
        && sane(hp.n_audio_state, 1, 100_000)
        && sane(hp.n_audio_head, 1, 1024)
        && sane(hp.n_audio_layer, 1, 1024)
        && sane(hp.n_text_ctx, 1, 100_000)
        && sane(hp.n_text_state, 1, 100_000)
        && sane(hp.n_text_head, 1, 1024)
        && sane(hp.n_text_layer, 1, 1024)
        && sane(hp.n_mels, 1, 1024))
    {
        return Err(GgmlError::Corrupt(format!("implausible header {hp:?}")));
    }
    if hp.file_type().is_none() && !matches!(hp.ftype % QNT_VERSION_FACTOR, 2 | 3 | 8 | 9) {
        return Err(GgmlError::Corrupt(format!("unknown ftype {}", hp.ftype)));
    }
    let n_mel = read_i32(&mut r, "the mel filters")?;
    let n_fft = read_i32(&mut r, "the mel filters")?;
    if !(sane(n_mel, 1, 1024) && sane(n_fft, 1, 100_000)) {
        return Err(GgmlError::Corrupt(format!("mel filters {n_mel} × {n_fft}")));
    }
    skip(
        &mut r,
        n_mel as u64 * n_fft as u64 * 4,
        size,
        "the mel filters",
    )?;
    let n_tokens = read_i32(&mut r, "the vocabulary")?;
    if !sane(n_tokens, 0, hp.n_vocab) {
        return Err(GgmlError::Corrupt(format!(
            "{n_tokens} vocabulary entries for n_vocab {}",
            hp.n_vocab
        )));
    }
    for i in 0..n_tokens {
        let len = read_i32(&mut r, "the vocabulary")?;
        if !sane(len, 0, 1024) {
            return Err(GgmlError::Corrupt(format!("token {i} has length {len}")));
        }
        skip(&mut r, len as u64, size, "the vocabulary")?;
    }
    let mut n_tensors = 0usize;
    loop {
        let pos = r.stream_position()?;
        if pos == size {
            break;
        }
        let what = format!("tensor #{n_tensors}");
        let n_dims = read_i32(&mut r, &what)?;
        let name_len = read_i32(&mut r, &what)?;
        let ttype = read_i32(&mut r, &what)?;
        if !sane(n_dims, 1, 4) || !sane(name_len, 1, 512) {
            return Err(GgmlError::Corrupt(format!("{what}: bad tensor header")));
        }
        let ttype = TensorType::from_code(ttype)
            .ok_or_else(|| GgmlError::Corrupt(format!("{what}: unknown tensor type {ttype}")))?;
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = read_i32(&mut r, &what)?;
            if d <= 0 {
                return Err(GgmlError::Corrupt(format!("{what}: dimension {d}")));
            }
            ne.push(d as usize);
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name)
            .map_err(|_| GgmlError::Truncated(what.clone()))?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let n: usize = ne.iter().product();
        let bytes = ttype.data_size(n, ne[0]).ok_or_else(|| {
            GgmlError::Corrupt(format!("tensor `{name}`: rows do not fit {ttype:?}"))
        })?;
        skip(&mut r, bytes as u64, size, &format!("tensor `{name}`"))?;
        n_tensors += 1;
    }
    if n_tensors != hp.expected_tensors() {
        return Err(GgmlError::Truncated(format!(
            "the tensor list ({n_tensors} of {} tensors)",
            hp.expected_tensors()
        )));
    }
    Ok(Info {
        hparams: hp,
        n_tokens: n_tokens as usize,
        n_tensors,
        size,
    })
}

fn skip<R: Read + Seek>(r: &mut R, n: u64, size: u64, what: &str) -> Result<(), GgmlError> {
    let pos = r.stream_position()?;
    if pos + n > size {
        return Err(GgmlError::Truncated(what.to_string()));
    }
    r.seek(SeekFrom::Current(n as i64))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_hparams(ftype: Ftype) -> Hparams {
        Hparams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 32,
            n_audio_head: 2,
            n_audio_layer: 0,
            n_text_ctx: 448,
            n_text_state: 32,
            n_text_head: 2,
            n_text_layer: 0,
            n_mels: 80,
            ftype: ftype.header_value(),
        }
    }

    #[test]
    fn header_layout_is_what_whisper_cpp_reads() {
        let mut w = Writer::new(Vec::new());
        w.header(&tiny_hparams(Ftype::F16)).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len(), 4 + 11 * 4);
        assert_eq!(&bytes[..4], b"lmgg");
        let ints: Vec<i32> = bytes[4..]
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(ints, vec![51864, 1500, 32, 2, 0, 448, 32, 2, 0, 80, 1]);
    }

    #[test]
    fn tensor_dims_are_reversed_and_typed() {
        let mut w = Writer::new(Vec::new());
        w.tensor("a.b", &[2, 3], TensorType::F16, &[1.0; 6])
            .unwrap();
        let b = w.finish().unwrap();
        let int = |i: usize| i32::from_le_bytes(b[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((int(0), int(1), int(2)), (2, 3, 1));
        assert_eq!((int(3), int(4)), (3, 2), "ggml order is innermost first");
        assert_eq!(&b[20..23], b"a.b");
        assert_eq!(b.len(), 23 + 6 * 2);
    }

    #[test]
    fn q8_0_matches_ggml_reference() {
        let mut v: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
        v[5] = 63.5;
        let q = quantize_q8_0(&v);
        assert_eq!(q.len(), 34);
        let d = f16::from_le_bytes([q[0], q[1]]).to_f32();
        assert!((d - 0.5).abs() < 1e-3, "scale {d}");
        assert_eq!(q[2 + 5] as i8, 127);
        assert_eq!(q[2] as i8, -32);
        assert_eq!(q[2 + 16] as i8, 0);
        // All zeros: scale 0 and zero quants, no NaN.
        assert_eq!(quantize_q8_0(&[0.0; 32]), vec![0u8; 34]);
    }

    #[test]
    fn canonical_names() {
        let mut hp = tiny_hparams(Ftype::F16);
        hp.n_audio_layer = 6;
        hp.n_audio_state = 512;
        assert_eq!(hp.canonical_name(), "base.en");
        hp.n_vocab = 51865;
        assert_eq!(hp.canonical_name(), "base");
        hp.ftype = Ftype::Q8_0.header_value();
        assert_eq!(hp.canonical_name(), "base-q8_0");
        assert_eq!(hp.file_type(), Some(Ftype::Q8_0));
    }
}
