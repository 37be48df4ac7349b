//! Reader for CTranslate2 `model.bin` files (binary version 6, `WhisperSpec`).
//!
//! Layout, all little-endian:
//! - header: `u32 version`, `str spec_name`, `u32 spec_revision`, `u32 n_variables`;
//! - `str` is a `u16` length that counts a trailing NUL, the UTF-8 bytes, the NUL;
//! - each variable: `str name`, `u8 rank`, `rank × u32 dims`, `u8 dtype`, `u32 n_bytes`, data;
//! - then `u32 n_aliases` and (alias, target) string pairs.
//!
//! The reader keeps the file in one buffer and records where each variable's data lies, so a
//! 150 MB model is not copied again while it is parsed.

use std::collections::BTreeMap;
use std::ops::Range;

use half::{bf16, f16};

/// Why a CTranslate2 model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("not a CTranslate2 model: {0}")]
    Format(String),
    #[error("unsupported CTranslate2 binary version {0} (this reader knows 5 and 6)")]
    Version(u32),
    #[error("the file ends inside {0} (truncated download?)")]
    Truncated(String),
    #[error("variable `{0}` is missing")]
    Missing(String),
    #[error("variable `{name}`: {why}")]
    Variable { name: String, why: String },
}

/// The element type of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// Where one variable lies in the file.
#[derive(Debug, Clone)]
pub struct VarInfo {
    pub dims: Vec<usize>,
    pub dtype: DType,
    range: Range<usize>,
}

/// A parsed CTranslate2 model. Variables are looked up by name; aliases are resolved.
pub struct Ct2Model {
    bytes: Vec<u8>,
    pub version: u32,
    pub spec: String,
    pub revision: u32,
    vars: BTreeMap<String, VarInfo>,
    aliases: BTreeMap<String, String>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Ct2Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| Ct2Error::Truncated(what.to_string()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, Ct2Error> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, Ct2Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, Ct2Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &str) -> Result<String, Ct2Error> {
        let len = self.u16(what)? as usize;
        let raw = self.take(len, what)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec())
            .map_err(|_| Ct2Error::Format(format!("{what} is not UTF-8")))
    }
}

impl Ct2Model {
    /// Parses a whole `model.bin` held in memory.
    pub fn parse(bytes: Vec<u8>) -> Result<Ct2Model, Ct2Error> {
        let mut c = Cursor {
            bytes: &bytes,
            pos: 0,
        };
        let version = c.u32("the header")?;
        if !(5..=6).contains(&version) {
            // A text file or a ggml file lands here too, with a huge "version".
            return Err(if version > 1000 {
                Ct2Error::Format(format!("bad header (first word {version:#x})"))
            } else {
                Ct2Error::Version(version)
            });
        }
        let spec = c.string("the spec name")?;
        let revision = c.u32("the spec revision")?;
        let n_vars = c.u32("the variable count")? as usize;
        if n_vars > 100_000 {
            return Err(Ct2Error::Format(format!(
                "implausible variable count {n_vars}"
            )));
        }
        let mut vars = BTreeMap::new();
        for i in 0..n_vars {
            let what = format!("variable {i}");
            let name = c.string(&what)?;
            let rank = c.u8(&what)? as usize;
            if rank > 8 {
                return Err(Ct2Error::Variable {
                    name,
                    why: format!("rank {rank}"),
                });
            }
            let mut dims = Vec::with_capacity(rank);
            for _ in 0..rank {
                dims.push(c.u32(&what)? as usize);
            }
            let code = c.u8(&what)?;
            let dtype = DType::from_code(code).ok_or_else(|| Ct2Error::Variable {
                name: name.clone(),
                why: format!("unknown dtype {code}"),
            })?;
            let n_bytes = c.u32(&what)? as usize;
            let elems: usize = dims.iter().product();
            if elems * dtype.size() != n_bytes {
                return Err(Ct2Error::Variable {
                    name,
                    why: format!("{n_bytes} bytes for dims {dims:?} of {dtype:?}"),
                });
            }
            let start = c.pos;
            c.take(n_bytes, &format!("the data of `{name}`"))?;
            vars.insert(
                name,
                VarInfo {
                    dims,
                    dtype,
                    range: start..start + n_bytes,
                },
            );
        }
        let mut aliases = BTreeMap::new();
        if c.pos < bytes.len() {
            let n_aliases = c.u32("the alias count")?;
            for _ in 0..n_aliases {
                let alias = c.string("an alias")?;
                let target = c.string("an alias target")?;
                aliases.insert(alias, target);
            }
        }
        Ok(Ct2Model {
            version,
            spec,
            revision,
            vars,
            aliases,
            bytes,
        })
    }

    /// The names of all variables, in file order of their names (sorted).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// Looks a variable up, following an alias if the name is one.
    pub fn info(&self, name: &str) -> Result<&VarInfo, Ct2Error> {
        let name = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.vars
            .get(name)
            .ok_or_else(|| Ct2Error::Missing(name.to_string()))
    }

    /// Whether a variable (or alias) exists.
    pub fn has(&self, name: &str) -> bool {
        self.info(name).is_ok()
    }

    /// The raw bytes of a variable.
    pub fn raw(&self, name: &str) -> Result<(&VarInfo, &[u8]), Ct2Error> {
        let info = self.info(name)?;
        Ok((info, &self.bytes[info.range.clone()]))
    }

    /// A scalar integer variable (`num_heads` and similar).
    pub fn scalar(&self, name: &str) -> Result<i64, Ct2Error> {
        let (info, raw) = self.raw(name)?;
        if raw.len() != info.dtype.size() {
            return Err(Ct2Error::Variable {
                name: name.to_string(),
                why: format!("expected a scalar, found dims {:?}", info.dims),
            });
        }
        Ok(match info.dtype {
            DType::I8 => raw[0] as i8 as i64,
            DType::I16 => i16::from_le_bytes([raw[0], raw[1]]) as i64,
            DType::I32 => i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as i64,
            other => {
                return Err(Ct2Error::Variable {
                    name: name.to_string(),
                    why: format!("expected an integer scalar, found {other:?}"),
                })
            }
        })
    }

    /// A variable's values as f32, whatever its stored type. An int8 variable is dequantised
    /// with its per-row `<name>_scale` (W = Wq / scale), as CTranslate2 stores int8 weights.
    pub fn values(&self, name: &str) -> Result<Vec<f32>, Ct2Error> {
        let (info, raw) = self.raw(name)?;
        let out: Vec<f32> = match info.dtype {
            DType::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F16 => raw
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            DType::BF16 => raw
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            DType::I8 => {
                let scale_name = format!("{name}_scale");
                let scales = self.values(&scale_name)?;
                let rows = info.dims.first().copied().unwrap_or(1).max(1);
                if scales.len() != rows {
                    return Err(Ct2Error::Variable {
                        name: scale_name,
                        why: format!("{} scales for {rows} rows", scales.len()),
                    });
                }
                let per_row = raw.len() / rows;
                raw.iter()
                    .enumerate()
                    .map(|(i, &q)| q as i8 as f32 / scales[i / per_row])
                    .collect()
            }
            DType::I16 | DType::I32 => {
                return Err(Ct2Error::Variable {
                    name: name.to_string(),
                    why: format!("integer {:?} is not a weight", info.dtype),
                })
            }
        };
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a CTranslate2 file in memory, as the real writer lays it out.
    pub(crate) struct Builder {
        vars: Vec<(String, Vec<u32>, u8, Vec<u8>)>,
        aliases: Vec<(String, String)>,
    }

    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    impl Builder {
        pub(crate) fn new() -> Builder {
            Builder {
                vars: Vec::new(),
                aliases: Vec::new(),
            }
        }
        pub(crate) fn f16(&mut self, name: &str, dims: &[u32], values: &[f32]) -> &mut Self {
            let data = values
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect();
            self.vars.push((name.into(), dims.to_vec(), 4, data));
            self
        }
        pub(crate) fn i8_scalar(&mut self, name: &str, v: i8) -> &mut Self {
            self.vars.push((name.into(), vec![], 1, vec![v as u8]));
            self
        }
        pub(crate) fn alias(&mut self, alias: &str, target: &str) -> &mut Self {
            self.aliases.push((alias.into(), target.into()));
            self
        }
        pub(crate) fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&6u32.to_le_bytes());
            put_str(&mut out, "WhisperSpec");
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(&(self.vars.len() as u32).to_le_bytes());
            for (name, dims, dtype, data) in &self.vars {
                put_str(&mut out, name);
                out.push(dims.len() as u8);
                for d in dims {
                    out.extend_from_slice(&d.to_le_bytes());
                }
                out.push(*dtype);
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                out.extend_from_slice(data);
            }
            out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
            for (a, t) in &self.aliases {
                put_str(&mut out, a);
                put_str(&mut out, t);
            }
            out
        }
    }

    #[test]
    fn reads_header_variables_and_aliases() {
        let bytes = Builder::new()
            .i8_scalar("encoder/num_heads", 8)
            .f16(
                "decoder/embeddings/weight",
                &[2, 3],
                &[1.0, -2.0, 0.5, 0.0, 3.0, 4.0],
            )
            .alias("decoder/projection/weight", "decoder/embeddings/weight")
            .build();
        let m = Ct2Model::parse(bytes).unwrap();
        assert_eq!(m.version, 6);
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(m.scalar("encoder/num_heads").unwrap(), 8);
        let info = m.info("decoder/projection/weight").unwrap();
        assert_eq!(info.dims, vec![2, 3]);
        assert_eq!(info.dtype, DType::F16);
        assert_eq!(
            m.values("decoder/embeddings/weight").unwrap(),
            vec![1.0, -2.0, 0.5, 0.0, 3.0, 4.0]
        );
        assert!(matches!(m.info("nope"), Err(Ct2Error::Missing(_))));
    }

    #[test]
    fn int8_weights_are_dequantised_per_row() {
        let mut b = Builder::new();
        b.vars
            .push(("w".into(), vec![2, 2], 1, vec![10u8, (-20i8) as u8, 4, 8]));
        let scales: Vec<u8> = [10.0f32, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        b.vars.push(("w_scale".into(), vec![2], 0, scales));
        let m = Ct2Model::parse(b.build()).unwrap();
        assert_eq!(m.values("w").unwrap(), vec![1.0, -2.0, 1.0, 2.0]);
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let bytes = Builder::new().f16("x", &[4], &[1.0, 2.0, 3.0, 4.0]).build();
        let cut = bytes[..bytes.len() - 9].to_vec();
        assert!(matches!(Ct2Model::parse(cut), Err(Ct2Error::Truncated(_))));
        let ggml = 0x6767_6d6cu32.to_le_bytes().to_vec();
        assert!(matches!(Ct2Model::parse(ggml), Err(Ct2Error::Format(_))));
        assert!(Ct2Model::parse(Vec::new()).is_err());
    }
}
