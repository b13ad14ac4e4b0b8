//! Line readers for sources and buffered writers for sinks and dead letters. Both are enums
//! rather than trait objects so the per-line calls are plain matches.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Stderr, Stdin, Stdout, Write};
use std::rc::Rc;

use crate::cli::Destination;

/// Buffer size of readers and writers: large enough that syscalls are rare per record.
pub const BUFFER_CAPACITY: usize = 1 << 20;

/// The UTF-8 byte order mark some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where one source reads its lines from. A byte order mark at the start of the input is not
/// part of the first line (but counts in the byte offsets, so a resume seeks to the right place).
pub struct SourceReader {
    input: Input,
    at_start: bool,
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
        Ok(SourceReader { input, at_start: true })
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
    /// end of input), a byte order mark at the start of the input included.
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> io::Result<usize> {
        let start = line.len();
        let length = match &mut self.input {
            Input::File(reader) => reader.read_until(b'\n', line),
            Input::Stdin(reader) => reader.read_until(b'\n', line),
            Input::Memory { data, position } => {
                let rest = &data[*position..];
                let length = rest.iter().position(|byte| *byte == b'\n').map_or(rest.len(), |index| index + 1);
                line.extend_from_slice(&rest[..length]);
                *position += length;
                Ok(length)
            }
        }?;
        if self.at_start && length > 0 {
            self.at_start = false;
            if line[start..].starts_with(BOM) {
                line.drain(start..start + BOM.len());
            }
        }
        Ok(length)
    }
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
        SourceReader { input: Input::Memory { data: Rc::from(data), position: 0 }, at_start: true }
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
