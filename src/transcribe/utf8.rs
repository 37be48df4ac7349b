//! Whisper's text comes as byte-level tokens: a character of Chinese, Thai, Hindi or any
//! script outside ASCII may be split between two tokens (or two segments). Decoding each
//! piece on its own writes U+FFFD for both halves ("��4" where base wrote one Chinese
//! character); [`Utf8Carry`] joins the pieces and gives back only whole characters.

/// Bytes of text arriving in pieces, given back as whole characters.
#[derive(Debug, Default)]
pub struct Utf8Carry {
    /// The start of a character whose other bytes are still to come.
    pending: Vec<u8>,
}

impl Utf8Carry {
    /// The whole characters `bytes` completes (with what was pending); an unfinished
    /// character at the end waits for the next piece. Bytes that cannot be UTF-8 are dropped
    /// (never a U+FFFD in a caption).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    // Valid by construction.
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // Not UTF-8 whatever follows: dropped.
                        Some(n) => rest = &bad[n..],
                        // A character cut short: wait for its other bytes.
                        None => {
                            rest = bad;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Whether a character is still waiting for bytes.
    #[cfg(test)]
    fn pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "性工作 除罪化" as byte-level tokens cut inside characters (each of these characters
    /// is three bytes): the shape of base's Chinese output, where every cut character was
    /// written as two U+FFFD.
    #[test]
    fn characters_cut_between_tokens_are_joined() {
        let text = "性工作 除罪化";
        let b = text.as_bytes();
        let cuts = [0, 2, 4, 9, 10, 13, 14, b.len()];
        let mut carry = Utf8Carry::default();
        let mut out = String::new();
        for w in cuts.windows(2) {
            out.push_str(&carry.push(&b[w[0]..w[1]]));
        }
        assert_eq!(out, text);
        assert!(!carry.pending());
        // Decoded token by token, as before:
        let lossy: String = cuts
            .windows(2)
            .map(|w| String::from_utf8_lossy(&b[w[0]..w[1]]).into_owned())
            .collect();
        assert!(lossy.contains('\u{FFFD}'));
    }

    #[test]
    fn a_character_cut_off_at_the_end_waits_and_bytes_that_are_not_utf8_go() {
        let mut carry = Utf8Carry::default();
        let thai = "ชุมชน".as_bytes();
        assert_eq!(carry.push(&thai[..4]), "ช");
        assert!(carry.pending());
        assert_eq!(carry.push(&[0xFF, b'a']), "a");
        // The cut character can no longer be finished: dropped with the stray byte.
        assert!(!carry.pending());
        assert_eq!(carry.push(b"ok \xC3"), "ok ");
        assert_eq!(carry.push(b"\xA9"), "é");
    }
}
