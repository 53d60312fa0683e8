//! Raw IP protocol 112 sockets for one instance.
//!
//! ```text
//!   receive: raw socket, bound to the interface (SO_BINDTODEVICE), joined to
//!            224.0.0.18; the kernel hands over the IP header, so the TTL check
//!            needs no control messages.
//!   send:    raw socket bound to the source address, TTL 255 (unicast and
//!            multicast), multicast out of the interface, no loopback.
//! ```
//! Two sockets because a raw socket bound to an address only receives
//! datagrams addressed to it, which would hide the multicast adverts.

use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::packet::{IPPROTO_VRRP, MULTICAST_GROUP, TTL};

/// The largest advert: IP header with options, 20 addresses, v2 auth.
const RECV_BUFFER: usize = 1500;
/// DSCP CS6 ("network control"), like keepalived.
const TOS_NETWORK_CONTROL: u32 = 0xc0;

/// The sockets of one instance.
pub struct VrrpSocket {
    /// A raw socket behind tokio's UDP type: only `recv` is used, which is
    /// the same syscall for any datagram socket, and it registers the fd
    /// with the reactor without `unsafe`.
    recv: tokio::net::UdpSocket,
    send: Socket,
}

// === impl VrrpSocket ===

impl VrrpSocket {
    /// Opens both sockets on `interface`; `src` is the advert source.
    pub fn open(interface: &str, src: Ipv4Addr, multicast: bool) -> std::io::Result<VrrpSocket> {
        let proto = Some(Protocol::from(i32::from(IPPROTO_VRRP)));
        let recv = Socket::new(Domain::IPV4, Type::RAW, proto)?;
        recv.bind_device(Some(interface.as_bytes()))?;
        if multicast {
            recv.join_multicast_v4(&MULTICAST_GROUP, &src)?;
        }
        recv.set_nonblocking(true)?;

        let send = Socket::new(Domain::IPV4, Type::RAW, proto)?;
        send.bind_device(Some(interface.as_bytes()))?;
        send.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))?;
        send.set_ttl_v4(u32::from(TTL))?;
        send.set_multicast_ttl_v4(u32::from(TTL))?;
        send.set_multicast_loop_v4(false)?;
        send.set_multicast_if_v4(&src)?;
        send.set_tos_v4(TOS_NETWORK_CONTROL)?;
        send.set_nonblocking(true)?;
        // Nothing is read from the sending socket: keep its queue tiny.
        send.set_recv_buffer_size(1)?;
        Ok(VrrpSocket {
            recv: tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(recv))?,
            send,
        })
    }

    /// The next datagram, IP header included.
    pub async fn recv(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; RECV_BUFFER];
        let n = self.recv.recv(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Sends one VRRP message (the kernel adds the IP header).
    pub fn send(&self, msg: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
        self.send
            .send_to(msg, &SockAddr::from(SocketAddrV4::new(dst, 0)))
            .map(drop)
    }
}
