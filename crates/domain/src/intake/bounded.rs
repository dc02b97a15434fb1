//! A reader that refuses to hand out more than a set number of bytes for one piece of a
//! body (a CSV line, a JSON asset), so that a parser buffering that piece never holds
//! more than the limit, whatever the body holds.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The error a [`Bounded`] reader returns when the piece being read passed its limit.
#[derive(Debug, thiserror::Error)]
#[error("a piece of the body is longer than {0} bytes")]
pub struct TooLong(pub usize);

/// Where the piece being read began, and how long it may grow; shared by the reader and
/// the parser that moves the mark as each piece ends.
#[derive(Debug, Clone)]
pub struct Piece(Rc<PieceState>);

#[derive(Debug)]
struct PieceState {
    /// Bytes handed out so far.
    read: Cell<u64>,
    /// The position of the piece being read.
    start: Cell<u64>,
    /// How many bytes the piece may take.
    limit: Cell<usize>,
    /// How far the parser may read ahead of the piece it is parsing (its own buffer).
    slack: usize,
}

impl Piece {
    pub fn new(limit: usize, slack: usize) -> Self {
        Self(Rc::new(PieceState {
            read: Cell::new(0),
            start: Cell::new(0),
            limit: Cell::new(limit),
            slack,
        }))
    }

    /// A new piece starts at `position` (a byte offset of the body), with `limit` bytes.
    pub fn start_at(&self, position: u64, limit: usize) {
        self.0.start.set(position);
        self.0.limit.set(limit);
    }

    /// A new piece starts now, as far as this reader knows: at the bytes handed out so
    /// far, less what the parser may hold read ahead (which belongs to the new piece).
    pub fn start_here(&self, limit: usize) {
        let read = self.0.read.get();
        self.start_at(read.saturating_sub(self.0.slack as u64), limit);
    }

    /// How many more bytes may be handed out before the piece is past its limit. The
    /// parser may hold up to `slack` bytes it has read but not parsed, so a piece is
    /// known to be too long only once that much more has been handed out.
    fn allowance(&self) -> u64 {
        let taken = self.0.read.get().saturating_sub(self.0.start.get());
        ((self.0.limit.get() + self.0.slack) as u64).saturating_sub(taken)
    }
}

/// Reads from `inner`, failing with [`TooLong`] once the current [`Piece`] passes its
/// limit.
pub struct Bounded<R> {
    inner: R,
    piece: Piece,
}

impl<R> Bounded<R> {
    pub fn new(inner: R, piece: Piece) -> Self {
        Self { inner, piece }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never more than the piece has left, so one large read cannot carry the parser
        // past the limit.
        let allowed = self.piece.allowance();
        if allowed == 0 && !buf.is_empty() {
            return Err(io::Error::other(TooLong(self.piece.0.limit.get())));
        }
        let want = buf
            .len()
            .min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let state = &self.piece.0;
        state.read.set(state.read.get() + n as u64);
        Ok(n)
    }
}

/// Whether an I/O error is a [`Bounded`] reader's refusal, and with which limit.
pub fn too_long(error: &io::Error) -> Option<usize> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<TooLong>())
        .map(|TooLong(limit)| *limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_may_take_its_limit_and_the_slack_but_not_more() {
        let piece = Piece::new(10, 4);
        let mut reader = Bounded::new(&[7u8; 100][..], piece.clone());
        let mut buf = [0u8; 100];
        let mut total = 0;
        let error = loop {
            match reader.read(&mut buf) {
                Ok(0) => panic!("the body ended before the limit"),
                Ok(n) => total += n,
                Err(e) => break e,
            }
        };
        assert_eq!(total, 14);
        assert_eq!(too_long(&error), Some(10));
    }

    #[test]
    fn starting_a_new_piece_gives_it_a_fresh_allowance() {
        let piece = Piece::new(10, 0);
        let mut reader = Bounded::new(&[7u8; 100][..], piece.clone());
        let mut buf = [0u8; 8];
        let mut total = 0;
        for _ in 0..10 {
            total += reader.read(&mut buf).unwrap();
            piece.start_here(10);
        }
        assert_eq!(total, 80);
    }
}
