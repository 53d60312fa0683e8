//! Client command bytes (first byte of a command packet).
//!
//! MariaDB `include/mysql_com.h` `enum enum_server_command`.

/// What response shape a command expects from the server; the response scanner
/// is driven by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Zero or more result sets / OK / ERR, possibly LOCAL INFILE (COM_QUERY).
    Results,
    /// COM_STMT_EXECUTE: binary result sets / OK / ERR; a result whose column
    /// EOF says SERVER_STATUS_CURSOR_EXISTS opened a cursor and ends there.
    Execute,
    /// COM_STMT_PREPARE: OK with counts, parameter and column definitions.
    Prepare,
    /// COM_STMT_FETCH: binary rows up to an EOF, or ERR.
    Fetch,
    /// COM_FIELD_LIST: column definitions up to an EOF, or ERR.
    FieldList,
    /// Exactly one packet (OK, ERR, EOF or a string).
    Single,
    /// No response at all (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA, COM_QUIT).
    Nothing,
}

pub const COM_SLEEP: u8 = 0x00;
pub const COM_QUIT: u8 = 0x01;
pub const COM_INIT_DB: u8 = 0x02;
pub const COM_QUERY: u8 = 0x03;
pub const COM_FIELD_LIST: u8 = 0x04;
pub const COM_CREATE_DB: u8 = 0x05;
pub const COM_DROP_DB: u8 = 0x06;
pub const COM_REFRESH: u8 = 0x07;
pub const COM_SHUTDOWN: u8 = 0x08;
pub const COM_STATISTICS: u8 = 0x09;
pub const COM_PROCESS_INFO: u8 = 0x0A;
pub const COM_CONNECT: u8 = 0x0B;
pub const COM_PROCESS_KILL: u8 = 0x0C;
pub const COM_DEBUG: u8 = 0x0D;
pub const COM_PING: u8 = 0x0E;
pub const COM_TIME: u8 = 0x0F;
pub const COM_DELAYED_INSERT: u8 = 0x10;
pub const COM_CHANGE_USER: u8 = 0x11;
pub const COM_BINLOG_DUMP: u8 = 0x12;
pub const COM_TABLE_DUMP: u8 = 0x13;
pub const COM_CONNECT_OUT: u8 = 0x14;
pub const COM_REGISTER_SLAVE: u8 = 0x15;
pub const COM_STMT_PREPARE: u8 = 0x16;
pub const COM_STMT_EXECUTE: u8 = 0x17;
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
pub const COM_STMT_CLOSE: u8 = 0x19;
pub const COM_STMT_RESET: u8 = 0x1A;
pub const COM_SET_OPTION: u8 = 0x1B;
pub const COM_STMT_FETCH: u8 = 0x1C;
pub const COM_DAEMON: u8 = 0x1D;
pub const COM_RESET_CONNECTION: u8 = 0x1F;

/// The response shape of a command tandem relays, or `None` for commands it
/// does not relay (they get ER_UNKNOWN_COM_ERROR, as MariaDB answers
/// commands it does not know).
pub fn expect(cmd: u8) -> Option<Expect> {
    Some(match cmd {
        COM_QUERY => Expect::Results,
        COM_STMT_EXECUTE => Expect::Execute,
        COM_STMT_PREPARE => Expect::Prepare,
        COM_STMT_FETCH => Expect::Fetch,
        COM_FIELD_LIST => Expect::FieldList,
        COM_INIT_DB | COM_PING | COM_STATISTICS | COM_SET_OPTION | COM_RESET_CONNECTION
        | COM_STMT_RESET | COM_PROCESS_KILL | COM_REFRESH | COM_DEBUG => Expect::Single,
        COM_QUIT | COM_STMT_CLOSE | COM_STMT_SEND_LONG_DATA => Expect::Nothing,
        _ => return None,
    })
}
