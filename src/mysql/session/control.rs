//! Commands tandem answers itself instead of relaying: `KILL` (ids are
//! tandem's, mapped to backend threads) and COM_CHANGE_USER (the new user is
//! authenticated by tandem and gets a fresh backend connection).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::backends::Slot;
use super::state::StateLog;
use super::{pooling, AdvanceBy, Session, SessionError};
use crate::mysql::backend::{self, ConnectParams};
use crate::mysql::io::PacketIo;
use crate::mysql::protocol::command::COM_QUERY;
use crate::mysql::protocol::err::{self, ServerError};
use crate::mysql::protocol::ok::OkInfo;
use crate::mysql::protocol::wire::Reader;
use crate::mysql::protocol::CapabilityFlags as Cap;
use crate::mysql::protocol::StatusFlags;

/// What a `KILL` statement targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillKind {
    Query,
    Connection,
}

/// Parses `KILL [HARD|SOFT] [CONNECTION|QUERY] <id>` (case-insensitive, an
/// optional trailing `;`). Other KILL forms (`KILL QUERY ID n`, `KILL USER u`)
/// return None and are relayed to the backend unchanged.
pub fn parse_kill(sql: &[u8]) -> Option<(KillKind, u64)> {
    let text = std::str::from_utf8(sql).ok()?;
    let text = text.trim().trim_end_matches(';').trim_end();
    let mut words = text.split_ascii_whitespace().peekable();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    if let Some(w) = words.peek() {
        if w.eq_ignore_ascii_case("hard") || w.eq_ignore_ascii_case("soft") {
            words.next();
        }
    }
    let mut kind = KillKind::Connection;
    if let Some(w) = words.peek() {
        if w.eq_ignore_ascii_case("query") {
            kind = KillKind::Query;
            words.next();
        } else if w.eq_ignore_ascii_case("connection") {
            words.next();
        }
    }
    let id: u64 = words.next()?.parse().ok()?;
    words.next().is_none().then_some((kind, id))
}

// === impl Session ===

impl Session {
    /// COM_QUERY that is a KILL of a tandem id: handled here. Returns false
    /// (nothing consumed) for every other statement.
    pub(super) async fn try_kill_statement(&mut self, len: usize) -> Result<bool, SessionError> {
        let sql = &self.client.rbuf[5..4 + len];
        let starts_with_k = sql
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'k'));
        if !starts_with_k {
            return Ok(false);
        }
        let Some((kind, id)) = parse_kill(sql) else {
            return Ok(false);
        };
        self.client.rbuf.advance_by(4 + len);
        self.kill(kind, id).await?;
        Ok(true)
    }

    /// COM_PROCESS_KILL: `0x0C id<4>`, the same as `KILL CONNECTION id`.
    pub(super) async fn com_process_kill(&mut self, len: usize) -> Result<(), SessionError> {
        let id = (len >= 5).then(|| {
            let b = &self.client.rbuf[5..9];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        });
        self.discard_command(len).await?;
        match id {
            Some(id) => self.kill(KillKind::Connection, u64::from(id)).await,
            None => self.reply_error(1, &ServerError::malformed_packet()).await,
        }
    }

    /// Kills a tandem session's backend thread through a side connection
    /// logged in as the requesting user, so the backend applies its own
    /// privilege rules (own threads, or CONNECTION ADMIN for others).
    async fn kill(&mut self, kind: KillKind, id: u64) -> Result<(), SessionError> {
        let target = u32::try_from(id)
            .ok()
            .and_then(|id| self.shared.sessions.get(&id).map(|h| h.clone()));
        let Some(target) = target else {
            let e = ServerError::new(
                err::ER_NO_SUCH_THREAD,
                "HY000",
                format!("Unknown thread id: {id}"),
            );
            return self.reply_error(1, &e).await;
        };
        let thread = target.backend_thread.load(Ordering::Relaxed);
        let backend_name = target
            .backend_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let address = self
            .shared
            .topology
            .load()
            .by_name(&backend_name)
            .map(|b| b.address.clone());
        let result = match address {
            Some(address) if thread != 0 => {
                self.kill_on_backend(&backend_name, &address, kind, thread)
                    .await
            }
            // No backend thread: the target is idle, or its statement waits
            // for a pooled connection. Another user's session needs the
            // privilege the server would ask for (SUPER or CONNECTION ADMIN).
            _ => match self.may_kill(&target.user_name(), target.id).await {
                Err(e) => Err(e),
                Ok(()) if kind == KillKind::Query => {
                    // The waiting statement must not run.
                    target.kill_query.store(true, Ordering::Relaxed);
                    target.query_killed.notify_waiters();
                    Ok(())
                }
                Ok(()) => Ok(()),
            },
        };
        match result {
            Err(e) => self.reply_error(1, &e).await,
            Ok(()) => {
                if kind == KillKind::Connection {
                    target.kill.cancel();
                    if target.id == self.handle.id {
                        return Err(SessionError::Killed);
                    }
                }
                self.client
                    .write_packet(
                        1,
                        &OkInfo {
                            status: self.status,
                            ..Default::default()
                        }
                        .encode(),
                    )
                    .await
                    .map_err(SessionError::ClientIo)?;
                Ok(())
            }
        }
    }

    /// `KILL` of a session with no backend thread, which tandem judges
    /// itself: one's own sessions always; another user's only with SUPER or
    /// CONNECTION ADMIN, asked of a backend as the requesting user (MariaDB
    /// "KILL": "you need the CONNECTION ADMIN privilege"), else ERR 1095.
    async fn may_kill(&mut self, owner: &str, id: u32) -> Result<(), ServerError> {
        if owner == self.user.name {
            return Ok(());
        }
        let denied = ServerError::new(
            err::ER_KILL_DENIED_ERROR,
            "HY000",
            format!("You are not owner of thread {id}"),
        );
        let slot = match self.state_slot().await {
            Ok(slot) => slot,
            Err(SessionError::StatementFailed(e)) => return Err(e),
            Err(_) => return Err(denied),
        };
        let sql = "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES \
                   WHERE PRIVILEGE_TYPE IN ('SUPER', 'CONNECTION ADMIN') AND GRANTEE = \
                   CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                   SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
        let conn = self.slots[slot].conn();
        conn.awaiting_response = true;
        let answer = crate::mysql::backend::query::query(conn, sql).await;
        conn.awaiting_response = answer.is_err();
        let privileged = answer
            .ok()
            .and_then(|r| r.rows.first()?.first()?.clone())
            .is_some_and(|n| n != "0");
        if privileged {
            Ok(())
        } else {
            Err(denied)
        }
    }

    async fn kill_on_backend(
        &self,
        backend_name: &str,
        address: &str,
        kind: KillKind,
        thread: u32,
    ) -> Result<(), ServerError> {
        let params = ConnectParams {
            backend_name,
            address,
            user: &self.user.name,
            secret: &self.secret,
            database: None,
            capabilities: self.caps & !Cap::CLIENT_CONNECT_ATTRS.bits(),
            ext_capabilities: 0,
            collation: self.collation,
            attributes: None,
            timeout: Duration::from_millis(self.shared.config.backend_connect_timeout_ms),
            tls: self.shared.backend_tls.as_ref(),
            max_packet: 1 << 20,
        };
        let mut conn = backend::connect(&params)
            .await
            .map_err(|e| e.to_client_error(backend_name, address))?;
        let what = match kind {
            KillKind::Query => "QUERY",
            KillKind::Connection => "CONNECTION",
        };
        let mut q = vec![COM_QUERY];
        q.extend_from_slice(format!("KILL {what} {thread}").as_bytes());
        let io: &mut PacketIo = &mut conn.io;
        let lost = |e: String| ServerError::backend_unreachable(backend_name, address, &e);
        io.write_packet(0, &q)
            .await
            .map_err(|e| lost(e.to_string()))?;
        let (_, resp) = io
            .read_packet_exact(1 << 20)
            .await
            .map_err(|e| lost(e.to_string()))?;
        let _ = io
            .write_packet(0, &[crate::mysql::protocol::command::COM_QUIT])
            .await;
        match resp.first() {
            Some(0xFF) => {
                Err(ServerError::parse(&resp).unwrap_or_else(ServerError::malformed_packet))
            }
            _ => Ok(()),
        }
    }

    /// COM_CHANGE_USER: authenticate the new user against the session's
    /// scramble, open a backend connection as that user, replace the old one.
    pub(super) async fn change_user(&mut self, len: usize) -> Result<(), SessionError> {
        let payload = if len < crate::mysql::protocol::MAX_PAYLOAD {
            self.client.rbuf[5..4 + len].to_vec()
        } else {
            Vec::new()
        };
        self.discard_command(len).await?;
        let Some(req) = ChangeUser::parse(&payload, self.caps) else {
            return Err(SessionError::Refused(ServerError::malformed_packet(), 1));
        };
        let using_password = !req.auth_response.is_empty();
        let denied = || {
            SessionError::Refused(
                ServerError::access_denied(&req.user, &self.client_ip, using_password),
                1,
            )
        };
        let plugin = req.auth_plugin.clone().unwrap_or_default();
        let found = super::auth::find_user(
            &self.shared,
            &req.user,
            &plugin,
            &self.scramble,
            &req.auth_response,
        )
        .await;
        let Some(user) = found else {
            return Err(denied());
        };
        let mut seq = 1u8;
        let secret = super::auth::verify(
            &self.shared,
            &mut self.client,
            &mut seq,
            &self.scramble,
            &user,
            &plugin,
            req.auth_response.clone(),
        )
        .await?;
        let Some(secret) = secret else {
            return Err(denied());
        };
        if !self.shared.acquire_user_slot(&user) {
            let e = ServerError::new(
                err::ER_TOO_MANY_USER_CONNECTIONS,
                "42000",
                format!(
                    "User {} already has more than 'max_user_connections' active connections",
                    user.name
                ),
            );
            return Err(SessionError::Refused(e, seq));
        }
        let collation = req.collation.unwrap_or(self.collation);
        // The old user's connections go back to the pool (reset first if
        // they hold a transaction or locks); the session starts over as the
        // new user, like a fresh login.
        self.return_all().await;
        let Some(primary) = self.shared.topology.load().primary().cloned() else {
            self.shared.release_user_slot(&user.name);
            let e = ServerError::new(
                err::ER_CONNECT_TO_FOREIGN_DATA_SOURCE,
                "HY000",
                "tandem: no primary backend is known",
            );
            return Err(SessionError::Refused(e, seq));
        };
        self.slots = vec![Slot::new(primary)];
        self.shared.release_user_slot(&self.user.name);
        self.key = pooling::pool_key(&user.name, self.caps, self.ext_caps, collation);
        self.state_owner = pooling::new_owner();
        self.current_slot = None;
        self.state = StateLog::default();
        self.forget_client_stmts();
        self.pinned = None;
        self.ro_txn_slot = None;
        self.last_slot = None;
        self.hold = None;
        self.consistency = user
            .consistency
            .unwrap_or(self.shared.config.routing.consistency);
        self.writes = Default::default();
        self.status = StatusFlags::SERVER_STATUS_AUTOCOMMIT.bits();
        *self.handle.user.lock().unwrap_or_else(|e| e.into_inner()) = user.name.clone();
        self.user = user;
        self.secret = secret;
        self.collation = collation;
        self.attributes = req.attributes.clone().or_else(|| self.attributes.take());
        if let Err(e) = self.enter(req.database).await {
            return Err(SessionError::Refused(e, seq));
        }
        let ok = OkInfo {
            status: self.status,
            ..Default::default()
        };
        self.client
            .write_packet(seq, &ok.encode())
            .await
            .map_err(SessionError::ClientIo)?;
        Ok(())
    }
}

/// COM_CHANGE_USER payload (after the command byte).
///
/// ```text
/// user NUL | auth (len1 + data, or NUL-terminated) | db NUL
/// | [collation int<2>] | [plugin NUL] | [attrs lenenc]
/// ```
struct ChangeUser {
    user: String,
    auth_response: Vec<u8>,
    database: Option<String>,
    collation: Option<u8>,
    auth_plugin: Option<String>,
    attributes: Option<Vec<u8>>,
}

impl ChangeUser {
    fn parse(payload: &[u8], caps: u32) -> Option<ChangeUser> {
        let mut r = Reader::new(payload);
        let user = String::from_utf8(r.nul_bytes().ok()?.to_vec()).ok()?;
        let auth_response = if caps & Cap::CLIENT_SECURE_CONNECTION.bits() != 0 {
            let n = r.u8().ok()?;
            r.take(usize::from(n)).ok()?.to_vec()
        } else {
            r.nul_bytes().ok()?.to_vec()
        };
        let db = String::from_utf8(r.nul_or_eof_bytes().to_vec()).ok()?;
        let collation = if r.remaining() >= 2 {
            Some(r.u16().ok()? as u8)
        } else {
            None
        };
        let auth_plugin = (caps & Cap::CLIENT_PLUGIN_AUTH.bits() != 0 && !r.is_empty())
            .then(|| String::from_utf8_lossy(r.nul_or_eof_bytes()).into_owned());
        let attributes = if caps & Cap::CLIENT_CONNECT_ATTRS.bits() != 0 && !r.is_empty() {
            Some(r.lenenc_bytes().ok()?.to_vec())
        } else {
            None
        };
        Some(ChangeUser {
            user,
            auth_response,
            database: (!db.is_empty()).then_some(db),
            collation,
            auth_plugin,
            attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_forms() {
        assert_eq!(parse_kill(b"KILL 5"), Some((KillKind::Connection, 5)));
        assert_eq!(
            parse_kill(b"  kill query 12 ;"),
            Some((KillKind::Query, 12))
        );
        assert_eq!(
            parse_kill(b"KILL HARD CONNECTION 7"),
            Some((KillKind::Connection, 7))
        );
        assert_eq!(parse_kill(b"KILL QUERY ID 7"), None);
        assert_eq!(parse_kill(b"KILL USER app"), None);
        assert_eq!(parse_kill(b"KILLX 5"), None);
        assert_eq!(parse_kill(b"KILL 5 6"), None);
    }

    #[test]
    fn change_user_parse() {
        let caps = (Cap::CLIENT_SECURE_CONNECTION | Cap::CLIENT_PLUGIN_AUTH).bits();
        let mut p = b"bob\0".to_vec();
        p.push(3);
        p.extend_from_slice(b"abc");
        p.extend_from_slice(b"db1\0");
        p.extend_from_slice(&45u16.to_le_bytes());
        p.extend_from_slice(b"mysql_native_password\0");
        let c = ChangeUser::parse(&p, caps).unwrap();
        assert_eq!(c.user, "bob");
        assert_eq!(c.auth_response, b"abc");
        assert_eq!(c.database.as_deref(), Some("db1"));
        assert_eq!(c.collation, Some(45));
        assert_eq!(c.auth_plugin.as_deref(), Some("mysql_native_password"));
        assert!(ChangeUser::parse(b"bob", caps).is_none());
    }
}
