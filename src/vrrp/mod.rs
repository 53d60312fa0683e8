//! Embedded VRRP: floating IPs that move between nodes (RFC 5798/9568 v3,
//! RFC 3768 v2), interoperable with keepalived.

pub mod machine;
pub mod packet;
