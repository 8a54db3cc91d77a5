//! Raw 8-bit header lines. Headers should be ASCII (non-ASCII text travels in encoded words),
//! but mail clients and spam write raw bytes: UTF-8 (RFC 6532 allows it) or a legacy charset,
//! mostly Latin-1 or its superset Windows-1252. A line that is valid UTF-8 is read as UTF-8;
//! any other is read as Windows-1252, which maps every byte to a character, so that nothing
//! of the line (an address after a garbled name) is lost.

/// Windows-1252's characters for the bytes 0x80–0x9F (Latin-1 has control codes there; the
/// five unassigned bytes are read as those control codes).
const CP1252_80_9F: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// A header block as UTF-8: each line that is not UTF-8 decoded as Windows-1252.
pub fn to_utf8(block: &[u8]) -> String {
    let mut out = String::with_capacity(block.len() + block.len() / 8);
    for line in block.split_inclusive(|&b| b == b'\n') {
        match std::str::from_utf8(line) {
            Ok(s) => out.push_str(s),
            Err(_) => out.extend(line.iter().map(|&b| windows_1252(b))),
        }
    }
    out
}

fn windows_1252(b: u8) -> char {
    match b {
        0x80..=0x9f => CP1252_80_9F[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_lines_stay_and_others_are_windows_1252() {
        let block = b"Subject: Gr\xfc\xdfe aus M\xfcnchen \x80\r\nX-Ok: Gr\xc3\xbc\xc3\x9fe\r\n";
        assert_eq!(
            to_utf8(block),
            "Subject: Grüße aus München €\r\nX-Ok: Grüße\r\n"
        );
    }
}
