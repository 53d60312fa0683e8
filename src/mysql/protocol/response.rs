//! Finds where a server response ends in a byte stream, without copying or
//! decoding rows.
//!
//! The relay hands the scanner whatever bytes the backend socket produced; the
//! scanner says how many of them belong to the current response (they can be
//! written to the client as they are) and whether the response is complete.
//! Only packets that can end a response (OK, ERR, EOF) and the few that
//! announce counts (column count, COM_STMT_PREPARE_OK) are looked into; rows
//! are skipped by their length header, so a 1 GiB row streams through a
//! small buffer.
//!
//! ```text
//! text/binary result:  column_count  column_def * n  [EOF]  row *  EOF|OK(0xFE)|ERR
//!                      ^ or OK / ERR / 0xFB LOCAL INFILE request
//! SERVER_MORE_RESULTS_EXISTS in the final status chains another result.
//! ```

use super::command::Expect;
use super::ok::{eof_status, OkInfo};
use super::wire::{header_len, Reader};
use super::{StatusFlags, MAX_PAYLOAD};

/// What the caller must do after [`Scanner::scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Relay `consumed` bytes, then read more from the backend.
    NeedMore,
    /// Relay `consumed` bytes; the response is complete.
    Done,
    /// Relay `consumed` bytes (they end with the 0xFB request); then relay the
    /// client's file packets up to an empty one, and scan again.
    LocalInfile,
}

/// How a response ended, for session tracking and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Status flags of the last OK/EOF seen (0 if none).
    pub status: u16,
    /// An OK/EOF carried `status` (0 is a valid status: autocommit off).
    pub has_status: bool,
    /// The response ended with an ERR packet.
    pub error: bool,
    /// Result sets seen.
    pub result_sets: u32,
    /// COM_STMT_PREPARE_OK: statement id, columns, params.
    pub prepared: Option<(u32, u16, u16)>,
    /// An OK/EOF reported warnings or an AUTO_INCREMENT id: state a client
    /// may ask about next (SHOW WARNINGS, LAST_INSERT_ID()) on the same
    /// connection.
    pub diagnostics: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First packet of a (next) result: OK, ERR, 0xFB or a column count.
    ResultStart,
    Columns {
        left: u64,
    },
    ColumnsEof,
    Rows,
    PrepareStart,
    PrepareParams {
        left: u16,
        cols: u16,
    },
    PrepareParamsEof {
        cols: u16,
    },
    PrepareCols {
        left: u16,
    },
    PrepareColsEof,
    /// Definitions until an EOF (COM_FIELD_LIST).
    FieldDefs,
    Single,
    Done,
}

/// Incremental response parser; one per in-flight command.
#[derive(Debug)]
pub struct Scanner {
    deprecate_eof: bool,
    /// COM_STMT_EXECUTE: a column EOF with CURSOR_EXISTS ends the response.
    /// Elsewhere the flag only says a stored program used a cursor (MariaDB
    /// sets it on a `BEGIN NOT ATOMIC ... OPEN c ...` block's result), and
    /// the rows still follow.
    cursor_possible: bool,
    state: State,
    /// Payload bytes of the current packet not yet seen.
    skip: usize,
    /// The packet being skipped is 0xFFFFFF long, so the next packet continues it.
    continued: bool,
    outcome: Outcome,
}

// === impl Scanner ===

impl Scanner {
    pub fn new(expect: Expect, deprecate_eof: bool) -> Scanner {
        let state = match expect {
            Expect::Results | Expect::Execute => State::ResultStart,
            Expect::Prepare => State::PrepareStart,
            Expect::Fetch => State::Rows,
            Expect::FieldList => State::FieldDefs,
            Expect::Single => State::Single,
            Expect::Nothing => State::Done,
        };
        Scanner {
            deprecate_eof,
            cursor_possible: expect == Expect::Execute,
            state,
            skip: 0,
            continued: false,
            outcome: Outcome::default(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done && self.skip == 0 && !self.continued
    }

    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Scans `buf` (bytes from the backend not yet relayed). Returns how many
    /// leading bytes belong to this response and what to do next.
    pub fn scan(&mut self, buf: &[u8]) -> (usize, Step) {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let take = self.skip.min(buf.len() - pos);
                pos += take;
                self.skip -= take;
                if self.skip > 0 {
                    return (pos, Step::NeedMore);
                }
            }
            if self.state == State::Done && !self.continued {
                return (pos, Step::Done);
            }
            if buf.len() - pos < 4 {
                return (pos, Step::NeedMore);
            }
            let len = header_len(&buf[pos..]);
            let body = pos + 4;
            let avail = buf.len() - body;
            if self.continued {
                // Tail of a multi-packet payload: plain data.
                self.continued = len == MAX_PAYLOAD;
                pos = body;
                self.skip = len;
                continue;
            }
            let first = if len == 0 {
                None
            } else if avail == 0 {
                return (pos, Step::NeedMore);
            } else {
                Some(buf[body])
            };
            let streamable = len == MAX_PAYLOAD
                || (self.state == State::Rows && !matches!(first, Some(0xFE) | Some(0xFF)));
            if !streamable && avail < len {
                return (pos, Step::NeedMore);
            }
            let payload = &buf[body..body + len.min(avail)];
            let local_infile = self.on_packet(first, payload, len);
            self.continued = len == MAX_PAYLOAD;
            pos = body;
            self.skip = len;
            if local_infile {
                pos += len;
                self.skip = 0;
                return (pos, Step::LocalInfile);
            }
        }
    }

    /// Advances the state machine over one packet; `payload` is complete
    /// unless the packet is a streamable row. Returns true for a LOCAL INFILE
    /// request.
    fn on_packet(&mut self, first: Option<u8>, payload: &[u8], len: usize) -> bool {
        let is_end = first == Some(0xFE) && len < MAX_PAYLOAD;
        match self.state {
            State::ResultStart => match first {
                Some(0x00) => self.end_with_ok(payload),
                Some(0xFF) => self.end_with_err(),
                Some(0xFB) => {
                    // After the file, the server answers with OK/ERR and may
                    // chain more results: scan from a result start again.
                    return true;
                }
                _ => {
                    let n = Reader::new(payload).lenenc().unwrap_or(0);
                    self.outcome.result_sets += 1;
                    self.state = if n == 0 {
                        State::Rows
                    } else {
                        State::Columns { left: n }
                    };
                }
            },
            State::Columns { left } => {
                if first == Some(0xFF) {
                    self.end_with_err();
                } else if left > 1 {
                    self.state = State::Columns { left: left - 1 };
                } else {
                    self.state = if self.deprecate_eof {
                        State::Rows
                    } else {
                        State::ColumnsEof
                    };
                }
            }
            State::ColumnsEof => {
                if first == Some(0xFF) {
                    self.end_with_err();
                } else {
                    let status = eof_status(payload).unwrap_or(0);
                    self.outcome.status = status;
                    self.outcome.has_status = true;
                    // An opened cursor (COM_STMT_EXECUTE with a cursor flag)
                    // sends no rows now; they come with COM_STMT_FETCH.
                    let cursor = StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits();
                    if self.cursor_possible && status & cursor != 0 {
                        self.after_final(status);
                    } else {
                        self.state = State::Rows;
                    }
                }
            }
            State::Rows => {
                if first == Some(0xFF) {
                    self.end_with_err();
                } else if is_end {
                    let status = self.end_status(payload);
                    self.after_final(status);
                }
            }
            State::PrepareStart => match first {
                Some(0x00) => {
                    let mut r = Reader::new(payload);
                    let _ = r.u8();
                    let id = r.u32().unwrap_or(0);
                    let cols = r.u16().unwrap_or(0);
                    let params = r.u16().unwrap_or(0);
                    self.outcome.prepared = Some((id, cols, params));
                    self.state = if params > 0 {
                        State::PrepareParams { left: params, cols }
                    } else {
                        self.prepare_cols_state(cols)
                    };
                }
                _ => self.end_with_err(),
            },
            State::PrepareParams { left, cols } => {
                self.state = if left > 1 {
                    State::PrepareParams {
                        left: left - 1,
                        cols,
                    }
                } else if self.deprecate_eof {
                    self.prepare_cols_state(cols)
                } else {
                    State::PrepareParamsEof { cols }
                };
            }
            State::PrepareParamsEof { cols } => self.state = self.prepare_cols_state(cols),
            State::PrepareCols { left } => {
                self.state = if left > 1 {
                    State::PrepareCols { left: left - 1 }
                } else if self.deprecate_eof {
                    State::Done
                } else {
                    State::PrepareColsEof
                };
            }
            State::PrepareColsEof => self.state = State::Done,
            State::FieldDefs => {
                if first == Some(0xFF) {
                    self.end_with_err();
                } else if is_end {
                    self.outcome.status = self.end_status(payload);
                    self.outcome.has_status = true;
                    self.state = State::Done;
                }
            }
            State::Single => {
                match first {
                    Some(0xFF) => self.outcome.error = true,
                    Some(0x00) => {
                        if let Some(ok) = OkInfo::parse(payload) {
                            self.outcome.status = ok.status;
                            self.outcome.has_status = true;
                        }
                    }
                    Some(0xFE) => {
                        if let Some(status) = eof_status(payload) {
                            self.outcome.status = status;
                            self.outcome.has_status = true;
                        }
                    }
                    _ => {}
                }
                self.state = State::Done;
            }
            State::Done => {}
        }
        false
    }

    fn prepare_cols_state(&self, cols: u16) -> State {
        if cols > 0 {
            State::PrepareCols { left: cols }
        } else {
            State::Done
        }
    }

    /// Status flags of a 0xFE end-of-rows packet in either protocol variant
    /// (noting warnings on the way).
    fn end_status(&mut self, payload: &[u8]) -> u16 {
        let (status, warnings) = if self.deprecate_eof {
            OkInfo::parse(payload).map_or((0, 0), |o| (o.status, o.warnings))
        } else {
            let warnings = payload
                .get(1..3)
                .map_or(0, |w| u16::from_le_bytes([w[0], w[1]]));
            (eof_status(payload).unwrap_or(0), warnings)
        };
        if warnings > 0 {
            self.outcome.diagnostics = true;
        }
        status
    }

    fn end_with_ok(&mut self, payload: &[u8]) {
        let ok = OkInfo::parse(payload).unwrap_or_default();
        if ok.warnings > 0 || ok.last_insert_id != 0 {
            self.outcome.diagnostics = true;
        }
        self.after_final(ok.status);
    }

    fn end_with_err(&mut self) {
        self.outcome.error = true;
        self.state = State::Done;
    }

    fn after_final(&mut self, status: u16) {
        self.outcome.status = status;
        self.outcome.has_status = true;
        self.state = if status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() != 0 {
            State::ResultStart
        } else {
            State::Done
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let n = payload.len();
        v.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq]);
        v.extend_from_slice(payload);
        v
    }

    fn ok(status: u16) -> Vec<u8> {
        OkInfo {
            status,
            ..Default::default()
        }
        .encode()
    }

    fn eof(status: u16) -> Vec<u8> {
        let s = status.to_le_bytes();
        vec![0xFE, 0, 0, s[0], s[1]]
    }

    fn text_result(deprecate: bool, status: u16) -> Vec<u8> {
        let mut v = pkt(1, &[2]);
        v.extend(pkt(2, b"\x03defcoldef-a"));
        v.extend(pkt(3, b"\x03defcoldef-b"));
        let mut seq = 4;
        if !deprecate {
            v.extend(pkt(seq, &eof(0x0002)));
            seq += 1;
        }
        v.extend(pkt(seq, b"\x011\x012"));
        v.extend(pkt(seq + 1, b"\xfb\x013"));
        let mut end = if deprecate { ok(status) } else { eof(status) };
        if deprecate {
            end[0] = 0xFE;
        }
        v.extend(pkt(seq + 2, &end));
        v
    }

    /// Feeds `bytes` in chunks of `chunk` and returns total consumed and last step.
    fn feed(s: &mut Scanner, bytes: &[u8], chunk: usize) -> (usize, Step) {
        let mut buf: Vec<u8> = Vec::new();
        let mut consumed_total = 0;
        let mut step = Step::NeedMore;
        for c in bytes.chunks(chunk) {
            buf.extend_from_slice(c);
            let (n, st) = s.scan(&buf);
            buf.drain(..n);
            consumed_total += n;
            step = st;
            if st == Step::Done {
                break;
            }
        }
        (consumed_total, step)
    }

    #[test]
    fn text_result_set_ends_at_eof_in_both_modes_and_any_chunking() {
        for deprecate in [false, true] {
            let bytes = text_result(deprecate, 0x0002);
            for chunk in [1, 3, 7, 1000] {
                let mut s = Scanner::new(Expect::Results, deprecate);
                let (n, step) = feed(&mut s, &bytes, chunk);
                assert_eq!((n, step), (bytes.len(), Step::Done), "chunk {chunk}");
                assert_eq!(s.outcome().status, 0x0002);
                assert_eq!(s.outcome().result_sets, 1);
            }
        }
    }

    #[test]
    fn more_results_chain_and_trailing_bytes_are_not_consumed() {
        let more = StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits();
        let mut bytes = text_result(false, more | 2);
        bytes.extend(pkt(1, &ok(2)));
        let total = bytes.len();
        bytes.extend_from_slice(b"junk-of-next-response");
        let mut s = Scanner::new(Expect::Results, false);
        assert_eq!(s.scan(&bytes), (total, Step::Done));
        assert_eq!(s.outcome().result_sets, 1);
    }

    #[test]
    fn err_ends_a_result_midway() {
        let mut bytes = pkt(1, &[1]);
        bytes.extend(pkt(2, b"\x03def"));
        bytes.extend(pkt(3, &eof(0)));
        bytes.extend(pkt(4, b"\x011"));
        bytes.extend(pkt(5, b"\xff\x25\x05#70100Query execution was interrupted"));
        let mut s = Scanner::new(Expect::Results, false);
        assert_eq!(s.scan(&bytes), (bytes.len(), Step::Done));
        assert!(s.outcome().error);
    }

    #[test]
    fn large_rows_stream_without_the_whole_packet() {
        let mut head = pkt(1, &[1]);
        head.extend(pkt(2, b"\x03def"));
        head.extend(pkt(3, &eof(0)));
        // A row of exactly MAX_PAYLOAD bytes, continued by a 10-byte packet.
        let mut s = Scanner::new(Expect::Results, false);
        let mut buf = head.clone();
        buf.extend_from_slice(&[0xFF, 0xFF, 0xFF, 4, 0xFE]);
        let (n, step) = s.scan(&buf);
        assert_eq!(step, Step::NeedMore);
        assert_eq!(n, buf.len(), "row bytes are relayed as they come");
        let mut rest = vec![0u8; MAX_PAYLOAD - 1];
        rest.extend(pkt(5, &[0u8; 10]));
        rest.extend(pkt(6, &eof(2)));
        assert_eq!(s.scan(&rest), (rest.len(), Step::Done));
    }

    #[test]
    fn local_infile_request_pauses_the_scan() {
        let bytes = pkt(1, b"\xfb/tmp/x.csv");
        let mut s = Scanner::new(Expect::Results, true);
        assert_eq!(s.scan(&bytes), (bytes.len(), Step::LocalInfile));
        let okp = pkt(3, &ok(2));
        assert_eq!(s.scan(&okp), (okp.len(), Step::Done));
    }

    #[test]
    fn prepare_ok_with_params_and_columns() {
        for deprecate in [false, true] {
            let mut p = vec![0x00];
            p.extend_from_slice(&7u32.to_le_bytes());
            p.extend_from_slice(&1u16.to_le_bytes());
            p.extend_from_slice(&2u16.to_le_bytes());
            p.extend_from_slice(&[0, 0, 0]);
            let mut bytes = pkt(1, &p);
            bytes.extend(pkt(2, b"\x03def-p1"));
            bytes.extend(pkt(3, b"\x03def-p2"));
            if !deprecate {
                bytes.extend(pkt(4, &eof(2)));
            }
            bytes.extend(pkt(5, b"\x03def-c1"));
            if !deprecate {
                bytes.extend(pkt(6, &eof(2)));
            }
            let mut s = Scanner::new(Expect::Prepare, deprecate);
            assert_eq!(feed(&mut s, &bytes, 5), (bytes.len(), Step::Done));
            assert_eq!(s.outcome().prepared, Some((7, 1, 2)));
        }
    }

    #[test]
    fn cursor_open_returns_after_column_eof() {
        let cursor = StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits();
        let mut bytes = pkt(1, &[1]);
        bytes.extend(pkt(2, b"\x03def"));
        bytes.extend(pkt(3, &eof(cursor | 2)));
        let mut s = Scanner::new(Expect::Execute, false);
        assert_eq!(s.scan(&bytes), (bytes.len(), Step::Done));
    }

    /// MariaDB sets CURSOR_EXISTS on the result of a compound statement
    /// that used a cursor (`BEGIN NOT ATOMIC ... OPEN c; ... SELECT x; END`):
    /// for COM_QUERY the rows still follow, and only the final EOF ends it.
    #[test]
    fn cursor_flag_in_a_text_result_does_not_end_it() {
        let cursor = StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits();
        let mut bytes = pkt(1, &[1]);
        bytes.extend(pkt(2, b"\x03def"));
        bytes.extend(pkt(3, &eof(cursor | 2)));
        let rows_at = bytes.len();
        bytes.extend(pkt(4, b"\x011"));
        bytes.extend(pkt(5, &eof(2)));
        let mut s = Scanner::new(Expect::Results, false);
        assert_eq!(s.scan(&bytes[..rows_at]), (rows_at, Step::NeedMore));
        let mut s = Scanner::new(Expect::Results, false);
        assert_eq!(s.scan(&bytes), (bytes.len(), Step::Done));
        assert_eq!(s.outcome().status, 2);
    }

    #[test]
    fn single_and_nothing() {
        let okp = pkt(1, &ok(2));
        let mut s = Scanner::new(Expect::Single, true);
        assert_eq!(s.scan(&okp), (okp.len(), Step::Done));
        let mut s = Scanner::new(Expect::Nothing, true);
        assert_eq!(s.scan(&okp), (0, Step::Done));
        let stats = pkt(1, b"Uptime: 5  Threads: 1");
        let mut s = Scanner::new(Expect::Single, false);
        assert_eq!(s.scan(&stats), (stats.len(), Step::Done));
    }
}
