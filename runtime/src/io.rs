//! Line readers for sources and buffered writers for sinks and dead letters. Both are enums
//! rather than trait objects so the per-line calls are plain matches.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Stderr, Stdin, Stdout, Write};
use std::rc::Rc;

use crate::cli::Destination;

/// Buffer size of readers and writers: large enough that syscalls are rare per record.
pub const BUFFER_CAPACITY: usize = 1 << 20;

/// The longest line a source reads whole, in bytes with its `\n` (`--max-line-bytes`).
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// The UTF-8 byte order mark some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where one source reads its lines from. A byte order mark at the start of the input is not
/// part of the first line (but counts in the byte offsets, so a resume seeks to the right place).
pub struct SourceReader {
    input: Input,
    at_start: bool,
    /// Lines longer than this keep only their first `max_line` bytes in the buffer.
    max_line: usize,
    /// The full length of the last line read, when it was longer than `max_line`.
    oversized: Option<u64>,
}

enum Input {
    File(BufReader<File>),
    Stdin(BufReader<Stdin>),
    /// Standard input read once and shared, when several sources read `-`.
    Memory {
        data: Rc<[u8]>,
        position: usize,
    },
}

impl SourceReader {
    /// Opens `path` (`-` is stdin). `shared_stdin` is set when several sources read stdin.
    pub fn open(path: &str, shared_stdin: Option<&Rc<[u8]>>) -> io::Result<SourceReader> {
        let input = if path == "-" {
            match shared_stdin {
                Some(data) => Input::Memory { data: Rc::clone(data), position: 0 },
                None => Input::Stdin(BufReader::with_capacity(BUFFER_CAPACITY, io::stdin())),
            }
        } else {
            Input::File(BufReader::with_capacity(BUFFER_CAPACITY, File::open(path)?))
        };
        Ok(SourceReader { input, at_start: true, max_line: DEFAULT_MAX_LINE_BYTES, oversized: None })
    }

    /// Bounds the bytes of a line kept in memory (the rest is skipped and only counted).
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line.max(1);
    }

    /// The full length in bytes of the line just read, when it was longer than the limit (the
    /// buffer then holds only its first bytes).
    pub fn take_oversized(&mut self) -> Option<u64> {
        self.oversized.take()
    }

    /// Reads all of stdin, for sharing between sources.
    pub fn read_all_stdin() -> io::Result<Rc<[u8]>> {
        let mut data = Vec::new();
        io::stdin().lock().read_to_end(&mut data)?;
        Ok(Rc::from(data))
    }

    /// Skips the first `offset` bytes (a source resuming from a checkpoint): a seek for files,
    /// a read for stdin.
    pub fn skip(&mut self, offset: u64) -> io::Result<()> {
        if offset > 0 {
            self.at_start = false;
        }
        match &mut self.input {
            Input::File(reader) => {
                io::Seek::seek(reader, io::SeekFrom::Start(offset))?;
            }
            Input::Stdin(reader) => {
                let skipped = io::copy(&mut reader.by_ref().take(offset), &mut io::sink())?;
                if skipped < offset {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "input is shorter than the checkpoint"));
                }
            }
            Input::Memory { data, position } => *position = (offset as usize).min(data.len()),
        }
        Ok(())
    }

    /// The next read goes to the operating system (and may block on a pipe or terminal).
    pub fn needs_refill(&self) -> bool {
        match &self.input {
            Input::File(reader) => reader.buffer().is_empty(),
            Input::Stdin(reader) => reader.buffer().is_empty(),
            Input::Memory { .. } => false,
        }
    }

    /// Appends the next line including its `\n` to `line`; returns the bytes read (0 at the
    /// end of input), a byte order mark at the start of the input included. A line longer than
    /// the limit is consumed whole but only its first bytes are kept (see `take_oversized`).
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> io::Result<usize> {
        let start = line.len();
        let max_line = self.max_line;
        let (length, oversized) = match &mut self.input {
            Input::File(reader) => read_bounded(reader, line, max_line),
            Input::Stdin(reader) => read_bounded(reader, line, max_line),
            Input::Memory { data, position } => {
                let rest = &data[*position..];
                let length = rest.iter().position(|byte| *byte == b'\n').map_or(rest.len(), |index| index + 1);
                line.extend_from_slice(&rest[..length.min(max_line)]);
                *position += length;
                Ok((length, length > max_line))
            }
        }?;
        self.oversized = oversized.then_some(length as u64);
        if self.at_start && length > 0 {
            self.at_start = false;
            if line[start..].starts_with(BOM) {
                line.drain(start..start + BOM.len());
            }
        }
        Ok(length)
    }
}

/// `read_until(b'\n')` that keeps at most `max_line` bytes of the line: the rest up to the
/// `\n` is consumed without being stored. Returns the line's full length and whether it was cut.
fn read_bounded(reader: &mut impl BufRead, line: &mut Vec<u8>, max_line: usize) -> io::Result<(usize, bool)> {
    let kept = reader.by_ref().take(max_line as u64).read_until(b'\n', line)?;
    if kept < max_line || line.last() == Some(&b'\n') {
        return Ok((kept, false));
    }
    // The limit was reached inside a line: skip to its end.
    let mut skipped = 0;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        match memchr::memchr(b'\n', buffer) {
            Some(index) => {
                reader.consume(index + 1);
                skipped += index + 1;
                break;
            }
            None => {
                let length = buffer.len();
                reader.consume(length);
                skipped += length;
            }
        }
    }
    Ok((kept + skipped, skipped > 0))
}

/// One output destination, shared by every sink (and the dead letters) that writes there, so
/// that lines from different sinks never interleave inside a buffer.
pub enum OutputWriter {
    File(BufWriter<File>),
    Stdout(BufWriter<Stdout>),
    Stderr(BufWriter<Stderr>),
    /// Suppressed output (`bootstrap`).
    Discard,
}

impl OutputWriter {
    /// Opens (creating or truncating) the destination.
    pub fn open(destination: &Destination) -> io::Result<OutputWriter> {
        Ok(match destination {
            Destination::Stdout => OutputWriter::Stdout(BufWriter::with_capacity(BUFFER_CAPACITY, io::stdout())),
            Destination::Stderr => OutputWriter::Stderr(BufWriter::with_capacity(BUFFER_CAPACITY, io::stderr())),
            Destination::File(path) => {
                OutputWriter::File(BufWriter::with_capacity(BUFFER_CAPACITY, File::create(path)?))
            }
            Destination::Network | Destination::Kafka(_) => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "a network output has no file writer"))
            }
            Destination::Discard => OutputWriter::Discard,
        })
    }

    /// Appends to a file opened (and cut back) by the caller.
    pub fn append_to(file: File) -> OutputWriter {
        OutputWriter::File(BufWriter::with_capacity(BUFFER_CAPACITY, file))
    }

    /// Flushes and, for files, waits until the data is on disk (a checkpoint commits it).
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        match self {
            OutputWriter::File(writer) => writer.get_ref().sync_data(),
            OutputWriter::Stdout(_) | OutputWriter::Stderr(_) | OutputWriter::Discard => Ok(()),
        }
    }

    /// Writes `text` and a newline.
    pub fn write_line(&mut self, text: &[u8]) -> io::Result<()> {
        match self {
            OutputWriter::File(writer) => {
                writer.write_all(text)?;
                writer.write_all(b"\n")
            }
            OutputWriter::Stdout(writer) => {
                writer.write_all(text)?;
                writer.write_all(b"\n")
            }
            OutputWriter::Stderr(writer) => {
                writer.write_all(text)?;
                writer.write_all(b"\n")
            }
            OutputWriter::Discard => Ok(()),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            OutputWriter::File(writer) => writer.flush(),
            OutputWriter::Stdout(writer) => writer.flush(),
            OutputWriter::Stderr(writer) => writer.flush(),
            OutputWriter::Discard => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(data: &[u8]) -> SourceReader {
        SourceReader {
            input: Input::Memory { data: Rc::from(data), position: 0 },
            at_start: true,
            max_line: DEFAULT_MAX_LINE_BYTES,
            oversized: None,
        }
    }

    #[test]
    fn a_line_over_the_limit_is_consumed_whole_but_kept_short() {
        let text = format!("{{\"a\":1}}\n{}\n{{\"b\":2}}\n{}", "x".repeat(10_000), "y".repeat(50));
        let path = std::env::temp_dir().join(format!("pulse-io-{}-long.jsonl", std::process::id()));
        std::fs::write(&path, &text).expect("write");
        let mut file = SourceReader::open(path.to_str().expect("utf-8"), None).expect("open");
        let mut memory = memory(text.as_bytes());
        for reader in [&mut file, &mut memory] {
            reader.set_max_line(16);
            let mut read = Vec::new();
            let mut line = Vec::new();
            loop {
                line.clear();
                let length = reader.read_line(&mut line).expect("read");
                if length == 0 {
                    break;
                }
                read.push((length, String::from_utf8_lossy(&line).into_owned(), reader.take_oversized()));
            }
            assert_eq!(
                read,
                vec![
                    (8, "{\"a\":1}\n".to_string(), None),
                    (10_001, "x".repeat(16), Some(10_001)),
                    (8, "{\"b\":2}\n".to_string(), None),
                    (50, "y".repeat(16), Some(50)),
                ]
            );
        }
        std::fs::remove_file(&path).expect("remove");
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_line_but_counts_in_offsets() {
        let mut reader = memory(b"\xEF\xBB\xBF{\"a\":1}\n\xEF\xBB\xBF\n");
        let mut line = Vec::new();
        assert_eq!(reader.read_line(&mut line).expect("memory never fails"), 11);
        assert_eq!(line, b"{\"a\":1}\n");
        line.clear();
        // Only the start of the input: a mark later in the file is data.
        assert_eq!(reader.read_line(&mut line).expect("memory never fails"), 4);
        assert_eq!(line, b"\xEF\xBB\xBF\n");
        // A resume past the start keeps the line as it is.
        let mut resumed = memory(b"\xEF\xBB\xBFab\n");
        resumed.skip(3).expect("skip");
        line.clear();
        resumed.read_line(&mut line).expect("memory never fails");
        assert_eq!(line, b"ab\n");
    }

    #[test]
    fn memory_reader_splits_lines_like_read_until() {
        let mut reader = memory(b"a\n\nlast");
        let mut line = Vec::new();
        let mut lines = Vec::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).expect("memory never fails") == 0 {
                break;
            }
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        assert_eq!(lines, vec!["a\n", "\n", "last"]);
    }
}
