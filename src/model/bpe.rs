//! GPT-2 byte-level BPE: token strings in CTranslate2's `vocabulary.txt` are written with
//! GPT-2's `bytes_to_unicode` table (every byte mapped to a printable character). ggml files
//! store the raw bytes, so the converter maps each character back to its byte.

use std::collections::HashMap;

/// The inverse of GPT-2's `bytes_to_unicode`: printable character → byte.
pub fn unicode_to_bytes() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
    printable.extend(u32::from('¡')..=u32::from('¬'));
    printable.extend(u32::from('®')..=u32::from('ÿ'));
    let mut map = HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0u32..256 {
        let ch = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        // Every code point here is below 0x200, so it is a valid char.
        if let Some(c) = char::from_u32(ch) {
            map.insert(c, b as u8);
        }
    }
    map
}

/// Decodes one token string to its bytes. `None` if a character is outside the table.
pub fn decode_token(token: &str, table: &HashMap<char, u8>) -> Option<Vec<u8>> {
    token.chars().map(|c| table.get(&c).copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_all_bytes_once() {
        let t = unicode_to_bytes();
        assert_eq!(t.len(), 256);
        let mut bytes: Vec<u8> = t.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
    }

    #[test]
    fn decodes_space_newline_and_multibyte_tokens() {
        let t = unicode_to_bytes();
        // "Ġ" is the space byte, "Ċ" the newline, as in every GPT-2 vocabulary.
        assert_eq!(decode_token("Ġhello", &t).unwrap(), b" hello");
        assert_eq!(decode_token("ĊĊ", &t).unwrap(), b"\n\n");
        assert_eq!(decode_token("!", &t).unwrap(), b"!");
        // Whisper's multilingual vocabulary writes " п" (Cyrillic) as "ĠÐ¿": bytes 20 D0 BF.
        let bytes = decode_token("ĠÐ¿", &t).unwrap();
        assert_eq!(bytes, vec![0x20, 0xD0, 0xBF]);
        assert_eq!(String::from_utf8(bytes).unwrap(), " п");
        // A character outside the table is refused, not guessed.
        assert!(decode_token("中", &t).is_none());
    }
}
