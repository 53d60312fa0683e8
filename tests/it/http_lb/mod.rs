//! The HTTP load balancer in front of real nginx and `php -S` backends
//! started by each test on loopback (see `fixtures`).

mod balancing;
mod fixtures;
mod health;
mod observability;
mod protocols;
mod relay;
mod streaming;
mod wire;
