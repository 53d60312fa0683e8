//! tandem's own statements on a backend connection (monitor checks,
//! heartbeat writes): the text protocol, with every value as text.
//!
//! ```text
//! COM_QUERY ──> OK | ERR
//!           └─> column count, column definitions [EOF], rows..., EOF|OK(0xFE)
//! ```
//! (MariaDB "COM_QUERY" and "Result Set Packets"; with CLIENT_DEPRECATE_EOF
//! the EOF after the definitions is absent and the final one is an OK packet
//! with header 0xFE.) Further result sets (SERVER_MORE_RESULTS_EXISTS) are
//! read and their rows appended, so the connection stays in sync. Callers
//! bound each call with a timeout: a stuck server must not stall them.

use super::BackendConn;
use crate::mysql::io::PacketError;
use crate::mysql::protocol::err::ServerError;
use crate::mysql::protocol::ok::{eof_status, OkInfo};
use crate::mysql::protocol::wire::Reader;
use crate::mysql::protocol::{CapabilityFlags as Cap, StatusFlags};

/// The rows of a result set, every value as text (`None` = SQL NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Why a statement of tandem's own failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The server answered with an ERR packet; the connection is still usable.
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(ServerError),
    #[error("{0}")]
    Io(#[from] PacketError),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("result larger than {0} bytes")]
    TooLarge(usize),
}

/// Bytes one call may read in all: tandem's checks return a few rows.
const RESULT_LIMIT: usize = 16 << 20;

// === impl QueryResult ===

impl QueryResult {
    /// The position of a column, by name (ASCII case-insensitive).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    }

    /// The value of `name` in row `row`; `None` for NULL or a missing column.
    pub fn get(&self, row: usize, name: &str) -> Option<&str> {
        let i = self.column(name)?;
        self.rows.get(row)?.get(i)?.as_deref()
    }
}

/// Runs `sql` and returns its rows (empty for a statement without a result).
/// After an error other than [`QueryError::Server`] the connection is in an
/// unknown state: drop it.
pub async fn query(conn: &mut BackendConn, sql: &str) -> Result<QueryResult, QueryError> {
    send(conn, sql).await?;
    let deprecate_eof = conn.capabilities & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
    let mut out = QueryResult::default();
    let mut budget = RESULT_LIMIT;
    // Each round reads one result; bounded by the byte budget.
    loop {
        let first = read(conn, &mut budget).await?;
        let status = match first.first() {
            Some(0x00) => ok_status(&first)?,
            Some(0xFF) => return Err(server_error(&first)),
            Some(0xFB) => return Err(QueryError::Protocol("LOCAL INFILE is not supported here")),
            Some(_) => read_result_set(conn, &first, deprecate_eof, &mut out, &mut budget).await?,
            None => return Err(QueryError::Protocol("empty packet")),
        };
        if status & StatusFlags::SERVER_MORE_RESULTS_EXISTS.bits() == 0 {
            return Ok(out);
        }
    }
}

/// Runs a statement that returns no rows (`SET`, `CREATE`, `UPDATE`...).
pub async fn exec(conn: &mut BackendConn, sql: &str) -> Result<OkInfo, QueryError> {
    send(conn, sql).await?;
    let mut budget = RESULT_LIMIT;
    let first = read(conn, &mut budget).await?;
    match first.first() {
        Some(0x00) => OkInfo::parse(&first).ok_or(QueryError::Protocol("malformed OK packet")),
        Some(0xFF) => Err(server_error(&first)),
        _ => {
            // A result set after all: read it so the connection stays usable.
            let deprecate_eof = conn.capabilities & Cap::CLIENT_DEPRECATE_EOF.bits() != 0;
            let mut sink = QueryResult::default();
            read_result_set(conn, &first, deprecate_eof, &mut sink, &mut budget).await?;
            Ok(OkInfo::default())
        }
    }
}

async fn send(conn: &mut BackendConn, sql: &str) -> Result<(), QueryError> {
    let mut payload = Vec::with_capacity(sql.len() + 1);
    payload.push(0x03); // COM_QUERY
    payload.extend_from_slice(sql.as_bytes());
    conn.io
        .write_packet(0, &payload)
        .await
        .map_err(PacketError::Io)?;
    Ok(())
}

async fn read(conn: &mut BackendConn, budget: &mut usize) -> Result<Vec<u8>, QueryError> {
    let (_, pkt) = conn
        .io
        .read_packet_exact(*budget)
        .await
        .map_err(|e| match e {
            PacketError::TooLarge(_) => QueryError::TooLarge(RESULT_LIMIT),
            other => QueryError::Io(other),
        })?;
    *budget = budget.saturating_sub(pkt.len() + 4);
    Ok(pkt)
}

/// Reads the column definitions and rows of one result set whose first
/// packet (the column count) is `first`; returns the final status flags.
async fn read_result_set(
    conn: &mut BackendConn,
    first: &[u8],
    deprecate_eof: bool,
    out: &mut QueryResult,
    budget: &mut usize,
) -> Result<u16, QueryError> {
    let count = Reader::new(first)
        .lenenc()
        .map_err(|_| QueryError::Protocol("malformed column count"))?;
    let mut columns = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let def = read(conn, budget).await?;
        columns.push(column_name(&def)?);
    }
    if !deprecate_eof {
        let eof = read(conn, budget).await?;
        if eof_status(&eof).is_none() {
            return Err(QueryError::Protocol(
                "expected EOF after column definitions",
            ));
        }
    }
    if out.columns.is_empty() {
        out.columns = columns;
    }
    // Bounded by the byte budget: every row costs at least 4 bytes.
    loop {
        let pkt = read(conn, budget).await?;
        match pkt.first() {
            Some(0xFF) => return Err(server_error(&pkt)),
            Some(0xFE) if !deprecate_eof && pkt.len() < 9 => {
                return eof_status(&pkt).ok_or(QueryError::Protocol("malformed EOF"));
            }
            Some(0xFE) if deprecate_eof && pkt.len() < 0xFF_FFFF => return ok_status(&pkt),
            _ => out.rows.push(row(&pkt, count as usize)?),
        }
    }
}

/// ColumnDefinition41: catalog, schema, table, org_table, name, ...
fn column_name(def: &[u8]) -> Result<String, QueryError> {
    let mut r = Reader::new(def);
    for _ in 0..4 {
        r.lenenc_bytes()
            .map_err(|_| QueryError::Protocol("malformed column definition"))?;
    }
    let name = r
        .lenenc_bytes()
        .map_err(|_| QueryError::Protocol("malformed column definition"))?;
    Ok(String::from_utf8_lossy(name).into_owned())
}

/// A text-protocol row: one length-encoded string per column, 0xFB = NULL.
fn row(pkt: &[u8], count: usize) -> Result<Vec<Option<String>>, QueryError> {
    let mut r = Reader::new(pkt);
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        if pkt.get(pkt.len() - r.remaining()) == Some(&0xFB) {
            r.skip(1)
                .map_err(|_| QueryError::Protocol("malformed row"))?;
            values.push(None);
            continue;
        }
        let v = r
            .lenenc_bytes()
            .map_err(|_| QueryError::Protocol("malformed row"))?;
        values.push(Some(String::from_utf8_lossy(v).into_owned()));
    }
    Ok(values)
}

fn ok_status(pkt: &[u8]) -> Result<u16, QueryError> {
    OkInfo::parse(pkt)
        .map(|o| o.status)
        .ok_or(QueryError::Protocol("malformed OK packet"))
}

fn server_error(pkt: &[u8]) -> QueryError {
    QueryError::Server(ServerError::parse(pkt).unwrap_or_else(ServerError::malformed_packet))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::mysql::io::{frame_into, PacketIo, Stream};
    use crate::mysql::protocol::wire::put_lenenc_bytes;

    fn column(name: &str) -> Vec<u8> {
        let mut def = Vec::new();
        for part in ["def", "", "", "", name, ""] {
            put_lenenc_bytes(&mut def, part.as_bytes());
        }
        def.extend_from_slice(&[0x0c, 0x21, 0, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
        def
    }

    fn text_row(values: &[Option<&str>]) -> Vec<u8> {
        let mut row = Vec::new();
        for v in values {
            match v {
                Some(v) => put_lenenc_bytes(&mut row, v.as_bytes()),
                None => row.push(0xFB),
            }
        }
        row
    }

    /// A connection whose server side answers one COM_QUERY with `packets`
    /// (sequence ids from 1), as a real server frames them.
    async fn answering(packets: Vec<Vec<u8>>, capabilities: u32) -> BackendConn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut header = [0u8; 4];
            s.read_exact(&mut header).await.unwrap();
            let mut command = vec![0u8; crate::mysql::protocol::wire::header_len(&header)];
            s.read_exact(&mut command).await.unwrap();
            let mut out = Vec::new();
            let mut seq = 1u8;
            for p in &packets {
                seq = frame_into(&mut out, seq, p);
            }
            s.write_all(&out).await.unwrap();
        });
        BackendConn {
            io: PacketIo::new(Stream::Plain(TcpStream::connect(addr).await.unwrap())),
            thread_id: 1,
            capabilities,
            version: "10.11.6-MariaDB".into(),
            status: 2,
            awaiting_response: false,
        }
    }

    const EOF: [u8; 5] = [0xFE, 0, 0, 0x02, 0];
    const EOF_MORE: [u8; 5] = [0xFE, 0, 0, 0x0A, 0];

    #[tokio::test]
    async fn result_sets_with_classic_eof_and_more_results() {
        let packets = vec![
            vec![2],
            column("a"),
            column("b"),
            EOF.to_vec(),
            text_row(&[Some("1"), None]),
            text_row(&[Some("x"), Some("")]),
            EOF_MORE.to_vec(),
            vec![1],
            column("c"),
            EOF.to_vec(),
            text_row(&[Some("2")]),
            EOF.to_vec(),
        ];
        let mut conn = answering(packets, 0).await;
        let r = query(&mut conn, "SELECT 1").await.unwrap();
        assert_eq!(r.columns, vec!["a", "b"]);
        assert_eq!(r.get(0, "a"), Some("1"));
        assert_eq!(r.get(0, "b"), None);
        assert_eq!(r.get(1, "b"), Some(""));
        assert_eq!(r.rows.len(), 3, "rows of the second result are appended");
    }

    #[tokio::test]
    async fn result_sets_without_eof_packets() {
        let ok_end = vec![0xFE, 0, 0, 0x02, 0, 0, 0];
        let packets = vec![vec![1], column("ts_us"), text_row(&[Some("42")]), ok_end];
        let deprecate = Cap::CLIENT_DEPRECATE_EOF.bits();
        let mut conn = answering(packets, deprecate).await;
        let r = query(&mut conn, "SELECT ts_us").await.unwrap();
        assert_eq!(r.get(0, "TS_US"), Some("42"));
    }

    #[tokio::test]
    async fn errors_and_ok_packets() {
        let err = ServerError::new(1146, "42S02", "Table 'tandem.heartbeat' doesn't exist");
        let mut conn = answering(vec![err.encode()], 0).await;
        match query(&mut conn, "SELECT ts_us FROM tandem.heartbeat").await {
            Err(QueryError::Server(e)) => assert_eq!(e.code, 1146),
            other => panic!("expected the server's error, got {other:?}"),
        }
        let ok = crate::mysql::protocol::ok::OkInfo {
            affected_rows: 2,
            ..Default::default()
        };
        let mut conn = answering(vec![ok.encode()], 0).await;
        assert_eq!(
            exec(&mut conn, "REPLACE INTO t VALUES (1)")
                .await
                .unwrap()
                .affected_rows,
            2
        );
        let mut conn = answering(vec![vec![1], column("a")], 0).await;
        assert!(
            matches!(
                query(&mut conn, "SELECT 1").await,
                Err(QueryError::Io(PacketError::Closed))
            ),
            "a result cut short is an error"
        );
    }

    #[test]
    fn rows_with_nulls_and_column_names() {
        let mut pkt = Vec::new();
        put_lenenc_bytes(&mut pkt, b"Yes");
        pkt.push(0xFB);
        put_lenenc_bytes(&mut pkt, b"");
        assert_eq!(
            row(&pkt, 3).unwrap(),
            vec![Some("Yes".into()), None, Some(String::new())]
        );
        assert!(row(&pkt, 4).is_err(), "a short row is an error");

        let mut def = Vec::new();
        for part in [&b"def"[..], b"", b"", b"", b"Slave_IO_Running", b""] {
            put_lenenc_bytes(&mut def, part);
        }
        assert_eq!(column_name(&def).unwrap(), "Slave_IO_Running");
        let r = QueryResult {
            columns: vec!["Slave_IO_Running".into(), "Seconds_Behind_Master".into()],
            rows: vec![vec![Some("Yes".into()), None]],
        };
        assert_eq!(r.get(0, "slave_io_running"), Some("Yes"));
        assert_eq!(r.get(0, "Seconds_Behind_Master"), None);
        assert_eq!(r.get(1, "Slave_IO_Running"), None);
    }
}
