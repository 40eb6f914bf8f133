//! The output buffer of one render, refusing to grow past its part's
//! limit.

use std::io;

/// An output buffer that refuses to grow past its limit, so an oversized
/// render stops at the first write that crosses it.
pub(crate) struct Bounded {
    /// What was written so far.
    pub(crate) bytes: Vec<u8>,
    /// Most bytes it takes.
    limit: usize,
    /// Whether a write would have crossed the limit.
    pub(crate) overflowed: bool,
}

impl Bounded {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
            overflowed: false,
        }
    }
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            self.overflowed = true;
            return Err(io::Error::other("output over its size limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
