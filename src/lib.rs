//! tandem: a MySQL-protocol proxy, a VRRP router and an HTTP load balancer
//! in one binary, for small LAMP clusters.
//!
//! # Layout
//!
//! - [`config`]: raw serde structs from TOML + environment -> validated [`config::Config`];
//!   errors name the file and the field.
//! - [`app`]: starts the parts a config names (admin, MySQL listener), owns the
//!   shutdown token and the task tracker; used by `main.rs` and by the tests (port 0).
//! - [`admin`]: the admin HTTP listener: `/metrics` (Prometheus), `/health`, `/status`,
//!   `/route`, and `POST /mysql/backends/{name}/{action}` (drain, maintenance, ready);
//!   who may use it (`access`: token, Host, forged POSTs) is judged before routing.
//! - [`metrics`]: metric names, descriptions and the Prometheus recorder.
//! - [`topology`]: the backends, their roles and states, published as an immutable
//!   snapshot (`ArcSwap`) that every routing decision loads once; GTID positions (`gtid`);
//!   the backend monitor
//!   (`monitor`: tasks and publishing, `probe`/`heartbeat`: I/O, `decide`/`health`: the pure
//!   judgement with rise/fall hysteresis, lag limits and primary discovery).
//! - [`mysql::protocol`]: pure wire format: packet framing, handshake, authentication
//!   scrambles, ERR/OK packets, the response scanner that finds where a result ends,
//!   compressed-protocol frames (`compress`).
//! - [`mysql::router`]: pure routing decisions: (classification, session state, topology
//!   snapshot) -> primary or a replica by the balance policy, with the reason.
//! - [`mysql::backend`]: tandem as a client: connect and authenticate to a backend;
//!   `query` runs tandem's own text-protocol statements (monitor, heartbeat).
//! - [`mysql::classify`]: pure statement classifier for read/write splitting (lexer hot path,
//!   sqlparser fallback): kind, flags, hint; anything not understood goes to the primary.
//! - [`mysql::session`]: one client session: frontend handshake and authentication, then
//!   the command loop: routes each statement, keeps session state the same on every backend
//!   it uses (replay log, pins, transactions, prepared statements), borrows and gives back
//!   pooled connections (`pooling`), read-your-writes (`consistency`), relays packets.
//! - [`mysql::pool`]: backend connection pools, one per session worker: per backend and
//!   user, lend/return with FIFO waiters and a cap, leases that free their place on drop,
//!   per-connection state fingerprint and prepared-statement cache.
//! - [`mysql::listener`]: the MySQL accept loop: connection limits, TLS, the session registry
//!   (tandem connection id -> backend thread, for `KILL`).
//! - [`mysql::users`]: who may log in: the configured users and, with pass-through, the
//!   primary's accounts read from `mysql.user`.
//! - [`mysql::io`]: plain-or-TLS socket, the compressed protocol toward clients as a
//!   layer over it, and the buffered packet reader/writer.
//! - [`workers`]: session worker threads, one single-threaded runtime per core.
//! - [`tls`]: rustls server/client configuration from PEM files.
//! - [`http_lb`]: the HTTP load balancer: frontends (h1/h2, TLS with SNI), server pools
//!   with smooth weighted round-robin / leastconn / random2 / source, active checks with
//!   rise/fall, passive ejection, drain, safe retries, stickiness, access log; HTTP/1.x
//!   on a byte-level relay (`relay`), the rest through hyper (`proxy`).
//! - [`vrrp`]: floating IPs: VRRPv3/v2 codec (`packet`), the pure state machine
//!   (`machine`), raw socket I/O (`socket`), VIPs, carrier and gratuitous ARP (`addr`,
//!   the only netlink user), tracked checks (`track`), notify and DB actions (`actions`);
//!   every instance runs on the VRRP thread's own runtime.

pub mod admin;
pub mod app;
pub mod config;
pub mod http_lb;
pub mod metrics;
pub mod mysql;
pub mod tls;
pub mod topology;
pub mod vrrp;
pub mod workers;
