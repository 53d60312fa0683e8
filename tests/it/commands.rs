//! Commands other than COM_QUERY, sent as raw packets to MariaDB directly
//! and through tandem: the responses must be the same, packet for packet.

use crate::common::{testbed, Proxy, Raw};

const CURSOR_EXISTS: u16 = 0x0040;
const LAST_ROW_SENT: u16 = 0x0080;

fn eof_status(p: &[u8]) -> u16 {
    u16::from_le_bytes([p[3], p[4]])
}

/// Runs the whole command script against one server; returns every response.
async fn script(addr: String) -> Vec<Vec<Vec<u8>>> {
    let mut r = Raw::login(addr, Raw::BASIC_CAPS).await;
    let mut all = Vec::new();
    // COM_INIT_DB, good and bad.
    r.send(0, b"\x02appdb").await;
    let (_, ok) = r.read_packet().await.unwrap();
    assert_eq!(ok[0], 0x00);
    r.send(0, b"\x02no_such_db_here").await;
    let err = r.expect_err().await;
    assert_eq!(err.code, 1049);
    all.push(vec![err.encode()]);
    // COM_FIELD_LIST.
    r.send(0, b"\x04users\0").await;
    let fields = r.until_eof().await;
    assert!(fields.len() > 2, "column definitions then EOF");
    all.push(fields);
    // COM_STATISTICS: one string packet (its numbers differ between runs).
    r.send(0, b"\x09").await;
    let (_, stats) = r.read_packet().await.unwrap();
    assert!(
        stats.starts_with(b"Uptime:"),
        "{}",
        String::from_utf8_lossy(&stats)
    );
    // COM_SET_OPTION multi-statements on, then a multi-statement query.
    r.send(0, &[0x1B, 0, 0]).await;
    let (_, p) = r.read_packet().await.unwrap();
    assert!(p[0] == 0xFE || p[0] == 0x00, "{p:?}");
    // Prepared statement with a read-only cursor, fetched two rows at a time.
    r.send(0, b"\x16SELECT id FROM appdb.users ORDER BY id LIMIT 3")
        .await;
    let (_, prep) = r.read_packet().await.unwrap();
    assert_eq!(prep[0], 0x00, "COM_STMT_PREPARE_OK");
    let id = [prep[1], prep[2], prep[3], prep[4]];
    let mut defs = r.until_eof().await;
    all.push(vec![prep[5..].to_vec()]);
    all.append(&mut defs.drain(..).map(|d| vec![d]).collect());
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id);
    exec.push(0x01); // CURSOR_TYPE_READ_ONLY
    exec.extend_from_slice(&1u32.to_le_bytes());
    r.send(0, &exec).await;
    let (_, count) = r.read_packet().await.unwrap();
    assert_eq!(count, vec![1]);
    let meta = r.until_eof().await;
    let eof = meta.last().unwrap();
    assert!(eof_status(eof) & CURSOR_EXISTS != 0, "cursor opened");
    all.push(meta);
    let mut fetch = vec![0x1C];
    fetch.extend_from_slice(&id);
    fetch.extend_from_slice(&2u32.to_le_bytes());
    r.send(0, &fetch).await;
    let first = r.until_eof().await;
    assert_eq!(first.len(), 3, "two rows and an EOF");
    r.send(0, &fetch).await;
    let second = r.until_eof().await;
    assert_eq!(second.len(), 2, "the last row and an EOF");
    assert!(eof_status(second.last().unwrap()) & LAST_ROW_SENT != 0);
    all.push(first);
    all.push(second);
    // COM_STMT_RESET, then SEND_LONG_DATA for `SELECT ?` and an execute.
    let mut reset = vec![0x1A];
    reset.extend_from_slice(&id);
    r.send(0, &reset).await;
    let (_, p) = r.read_packet().await.unwrap();
    assert_eq!(p[0], 0x00);
    r.send(0, b"\x16SELECT CONCAT(?, '!')").await;
    let (_, prep) = r.read_packet().await.unwrap();
    let id2 = [prep[1], prep[2], prep[3], prep[4]];
    let _ = r.until_eof().await; // parameter definitions
    let _ = r.until_eof().await; // column definitions
    for chunk in [&b"hello "[..], b"world"] {
        let mut long = vec![0x18];
        long.extend_from_slice(&id2);
        long.extend_from_slice(&0u16.to_le_bytes());
        long.extend_from_slice(chunk);
        r.send(0, &long).await; // no response
    }
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id2);
    exec.push(0);
    exec.extend_from_slice(&1u32.to_le_bytes());
    exec.extend_from_slice(&[0x00, 0x01, 0xFE, 0x00]); // null bitmap, types bound: string
    r.send(0, &exec).await;
    let (_, count) = r.read_packet().await.unwrap();
    assert_eq!(count, vec![1]);
    let _ = r.until_eof().await; // column definition + EOF
    let rows = r.until_eof().await;
    assert_eq!(rows.len(), 2);
    assert!(rows[0].ends_with(b"hello world!"), "{:?}", rows[0]);
    all.push(rows);
    // COM_STMT_CLOSE has no response: the next command's answer comes next.
    let mut close = vec![0x19];
    close.extend_from_slice(&id2);
    r.send(0, &close).await;
    r.send(0, b"\x0E").await;
    let (seq, p) = r.read_packet().await.unwrap();
    assert_eq!((seq, p[0]), (1, 0x00), "COM_PING after COM_STMT_CLOSE");
    all
}

#[tokio::test]
async fn raw_commands_get_identical_responses() {
    let proxy = Proxy::start().await;
    let direct = script(testbed().primary.clone()).await;
    let through = script(proxy.addr().to_string()).await;
    assert_eq!(direct.len(), through.len());
    for (i, (d, t)) in direct.iter().zip(&through).enumerate() {
        assert_eq!(d, t, "response #{i} differs through tandem");
    }
}

/// Reads whatever arrives until the connection has been quiet for 300 ms.
async fn until_quiet(r: &mut Raw) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(Some((_, p))) =
        tokio::time::timeout(std::time::Duration::from_millis(300), r.read_packet()).await
    {
        out.push(p);
    }
    out
}

/// With CLIENT_DEPRECATE_EOF the end-of-rows marker is an OK packet and the
/// metadata EOF disappears; the cursor responses must still line up.
async fn cursor_script_deprecate_eof(addr: String) -> Vec<Vec<Vec<u8>>> {
    use tandem::mysql::protocol::CapabilityFlags as Cap;
    let caps = Raw::BASIC_CAPS | Cap::CLIENT_DEPRECATE_EOF.bits();
    let mut r = Raw::login(addr, caps).await;
    let mut all = Vec::new();
    r.send(0, b"\x16SELECT id FROM appdb.users ORDER BY id LIMIT 3")
        .await;
    all.push(until_quiet(&mut r).await);
    let id = [all[0][0][1], all[0][0][2], all[0][0][3], all[0][0][4]];
    // Statement ids are the server's counter: compare everything else.
    all[0][0][1..5].fill(0);
    let mut exec = vec![0x17];
    exec.extend_from_slice(&id);
    exec.push(0x01);
    exec.extend_from_slice(&1u32.to_le_bytes());
    r.send(0, &exec).await;
    all.push(until_quiet(&mut r).await);
    let mut fetch = vec![0x1C];
    fetch.extend_from_slice(&id);
    fetch.extend_from_slice(&5u32.to_le_bytes());
    r.send(0, &fetch).await;
    all.push(until_quiet(&mut r).await);
    r.send(0, b"\x0E").await;
    let (_, ping) = r.read_packet().await.expect("ping answered");
    assert_eq!(ping[0], 0x00);
    all
}

#[tokio::test]
async fn cursors_with_deprecate_eof_line_up() {
    let proxy = Proxy::start().await;
    let direct = cursor_script_deprecate_eof(testbed().primary.clone()).await;
    let through = cursor_script_deprecate_eof(proxy.addr().to_string()).await;
    assert_eq!(
        direct[2].len(),
        4,
        "three rows and the end marker: {:?}",
        direct[2]
    );
    assert_eq!(direct, through);
}
