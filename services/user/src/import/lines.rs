//! Where an import's lines are: [`LineBound`] reads the body, refusing a
//! line over [`MAX_LINE`] and noting each newline's byte offset, and
//! [`Lines`] turns a CSV record's byte offset into its line number.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

use super::parse::MAX_LINE;

/// The byte offsets of the newlines read and not yet counted by [`Lines`].
pub(super) type Newlines = Rc<RefCell<VecDeque<u64>>>;

/// The line of a CSV record from its byte offset. (The `csv` crate's own
/// line numbers are one short after a CRLF; its byte offsets point at a
/// CRLF's `\n`, so a record starts on the line after every newline at or
/// before its offset.)
pub(super) struct Lines {
    newlines: Newlines,
    counted: u64,
}

impl Lines {
    pub(super) fn new(newlines: Newlines) -> Self {
        Self { newlines, counted: 0 }
    }

    /// The line (from 1) of the record starting at byte `start`; records
    /// come in order.
    pub(super) fn of(&mut self, start: u64) -> u64 {
        let mut newlines = self.newlines.borrow_mut();
        while newlines.front().is_some_and(|at| *at <= start) {
            newlines.pop_front();
            self.counted += 1;
        }
        self.counted + 1
    }
}

/// A `Read` that fails on a line longer than [`MAX_LINE`] instead of
/// growing a buffer without end, and notes where each newline is.
pub(super) struct LineBound<R> {
    inner: R,
    line: usize,
    lines: u64,
    offset: u64,
    newlines: Newlines,
}

impl<R> LineBound<R> {
    pub(super) fn new(inner: R, newlines: Newlines) -> Self {
        Self {
            inner,
            line: 0,
            lines: 0,
            offset: 0,
            newlines,
        }
    }
}

impl<R: Read> Read for LineBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        let mut newlines = self.newlines.borrow_mut();
        for (at, byte) in buf[..read].iter().enumerate() {
            if *byte == b'\n' {
                self.line = 0;
                self.lines += 1;
                newlines.push_back(self.offset + at as u64);
            } else {
                self.line += 1;
                if self.line > MAX_LINE {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("line {}: longer than {} KiB", self.lines + 1, MAX_LINE / 1024),
                    ));
                }
            }
        }
        self.offset += read as u64;
        Ok(read)
    }
}
