//! Integration tests: the in-process daemon on 127.0.0.1:0 in front of the
//! real MariaDB testbed (`scripts/testbed`), driven by real clients. Every
//! client-visible assertion is made both directly against MariaDB and
//! through tandem.

mod admin;
mod auth;
mod bad_input;
mod cli;
mod clients;
mod commands;
mod common;
mod faults;
mod http_lb;
mod monitor;
mod pool;
mod protocol;
mod split;
mod stmt_limit;
mod vrrp;
