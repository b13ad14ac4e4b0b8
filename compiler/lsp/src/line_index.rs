//! Byte offsets <-> LSP positions. The LSP counts columns in UTF-16 code units; the compiler's
//! spans are byte offsets into UTF-8 text, so every position crossing the boundary goes through here.

use lsp_types::{Position, Range};

/// Line starts of one text, for converting in both directions.
#[derive(Clone, Debug)]
pub struct LineIndex {
    text: String,
    line_starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(idx, _)| idx + 1));
        LineIndex { text: text.to_string(), line_starts }
    }

    /// The LSP position of a byte offset (clamped to the text, and to a char boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(idx) => idx,
            Err(idx) => idx - 1,
        };
        let line_start = self.line_starts[line_idx];
        let character: usize = self.text[line_start..offset].chars().map(char::len_utf16).sum();
        Position { line: line_idx as u32, character: character as u32 }
    }

    /// The byte offset of an LSP position. A column past the end of its line means the line's end
    /// (before the newline); a line past the end means the end of the text.
    pub fn offset(&self, position: Position) -> usize {
        let Some(&line_start) = self.line_starts.get(position.line as usize) else {
            return self.text.len();
        };
        let line_end = self.line_starts.get(position.line as usize + 1).map(|next| next - 1).unwrap_or(self.text.len());
        let mut units = 0usize;
        for (idx, ch) in self.text[line_start..line_end].char_indices() {
            if units >= position.character as usize {
                return line_start + idx;
            }
            units += ch.len_utf16();
        }
        line_end
    }

    pub fn range(&self, range: std::ops::Range<usize>) -> Range {
        Range { start: self.position(range.start), end: self.position(range.end) }
    }

    pub fn end(&self) -> Position {
        self.position(self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_utf16_code_units() {
        // `é` is 2 bytes and 1 UTF-16 unit; `😀` is 4 bytes and 2 UTF-16 units.
        let text = "ab\nxé😀y\n";
        let index = LineIndex::new(text);
        let y = text.find('y').expect("y is in the text");
        assert_eq!(index.position(y), Position { line: 1, character: 4 });
        assert_eq!(index.offset(Position { line: 1, character: 4 }), y);
        assert_eq!(index.offset(Position { line: 1, character: 2 }), text.find('😀').expect("emoji"));
        assert_eq!(index.position(0), Position { line: 0, character: 0 });
        assert_eq!(index.position(3), Position { line: 1, character: 0 });
    }

    #[test]
    fn clamps_out_of_range_positions() {
        let text = "ab\ncd";
        let index = LineIndex::new(text);
        assert_eq!(index.offset(Position { line: 0, character: 99 }), 2);
        assert_eq!(index.offset(Position { line: 9, character: 0 }), text.len());
        assert_eq!(index.position(99), Position { line: 1, character: 2 });
        // An offset inside a multi-byte character snaps back to its start.
        let index = LineIndex::new("é");
        assert_eq!(index.position(1), Position { line: 0, character: 0 });
    }
}
