//! The MySQL side of tandem: wire protocol, backend connections, client sessions
//! and the listener that accepts them.

pub mod backend;
pub mod classify;
pub mod io;
pub mod listener;
pub mod pool;
pub mod protocol;
pub mod router;
pub mod session;
pub mod users;
