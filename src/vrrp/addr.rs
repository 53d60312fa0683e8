//! The interface side: link state, addresses, VIPs (rtnetlink) and
//! gratuitous ARP (an AF_PACKET socket through `pnet_datalink`). The only
//! module that touches netlink.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::LinkFlags;
use rtnetlink::Handle;

use crate::config::VirtualIp;

/// Why an interface operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    #[error("netlink: {0}")]
    Netlink(#[from] rtnetlink::Error),
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("no interface named {0:?}")]
    NoInterface(String),
    #[error("gratuitous ARP on {interface}: {reason}")]
    Arp { interface: String, reason: String },
}

/// A netlink handle; its connection task runs on the VRRP runtime.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

/// What the kernel says about an interface now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    /// Administratively up and the carrier present.
    pub usable: bool,
}

/// An IPv4 address on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// Not the primary address of its subnet.
    pub secondary: bool,
}

// === impl Netlink ===

impl Netlink {
    /// Opens a netlink socket; must run inside a Tokio runtime.
    pub fn open() -> Result<Netlink, AddrError> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    pub async fn link(&self, name: &str) -> Result<LinkState, AddrError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => {
                let f = msg.header.flags;
                Ok(LinkState {
                    index: msg.header.index,
                    usable: f.contains(LinkFlags::Up)
                        && f.contains(LinkFlags::LowerUp)
                        && f.contains(LinkFlags::Running),
                })
            }
            Ok(None) => Err(AddrError::NoInterface(name.to_owned())),
            // ENODEV comes back as an error message.
            Err(rtnetlink::Error::NetlinkError(_)) => Err(AddrError::NoInterface(name.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// The IPv4 addresses of interface `index`, primary ones first.
    pub async fn addresses(&self, index: u32) -> Result<Vec<IfAddr>, AddrError> {
        let mut out = Vec::new();
        let mut msgs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = msgs.try_next().await? {
            if let Some(addr) = local_v4(&msg) {
                out.push(IfAddr {
                    addr,
                    prefix: msg.header.prefix_len,
                    secondary: msg
                        .header
                        .flags
                        .contains(rtnetlink::packet_route::address::AddressHeaderFlags::Secondary),
                });
            }
        }
        out.sort_by_key(|a| a.secondary);
        Ok(out)
    }

    /// Adds a VIP (present already is fine).
    pub async fn add(&self, index: u32, vip: VirtualIp) -> Result<(), AddrError> {
        match self
            .handle
            .address()
            .add(index, IpAddr::V4(vip.addr), vip.prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_eexist() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a VIP if present; returns whether it was.
    pub async fn remove(&self, index: u32, vip: Ipv4Addr) -> Result<bool, AddrError> {
        let mut msgs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(IpAddr::V4(vip))
            .execute();
        let mut found = Vec::new();
        while let Some(msg) = msgs.try_next().await? {
            if local_v4(&msg) == Some(vip) {
                found.push(msg);
            }
        }
        let removed = !found.is_empty();
        for msg in found {
            self.handle.address().del(msg).execute().await?;
        }
        Ok(removed)
    }
}

fn local_v4(msg: &AddressMessage) -> Option<Ipv4Addr> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(v)) => Some(*v),
        _ => None,
    })
}

/// EEXIST; netlink errors carry the negated errno.
fn libc_eexist() -> i32 {
    17
}

/// An open AF_PACKET socket on one interface for gratuitous ARP.
///
/// Opened once, at start: binding a packet socket to a device waits for an
/// RCU grace period (several ms), which would otherwise delay every takeover.
/// Nothing is read from it; the kernel drops what its small queue cannot hold.
pub struct ArpSender {
    interface: String,
    mac: [u8; 6],
    tx: Box<dyn pnet_datalink::DataLinkSender>,
}

// === impl ArpSender ===

impl ArpSender {
    pub fn open(interface: &str) -> Result<ArpSender, AddrError> {
        let arp_err = |reason: String| AddrError::Arp {
            interface: interface.to_owned(),
            reason,
        };
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == interface)
            .ok_or_else(|| AddrError::NoInterface(interface.to_owned()))?;
        let mac = iface
            .mac
            .ok_or_else(|| arp_err("no MAC address".into()))?
            .octets();
        let config = pnet_datalink::Config {
            read_timeout: Some(std::time::Duration::from_millis(1)),
            // pnet's default would put the interface in promiscuous mode while
            // the socket is open; sending needs none of that.
            promiscuous: false,
            ..Default::default()
        };
        let tx = match pnet_datalink::channel(&iface, config) {
            Ok(pnet_datalink::Channel::Ethernet(tx, _rx)) => tx,
            Ok(_) => return Err(arp_err("not an Ethernet interface".into())),
            Err(e) => return Err(arp_err(e.to_string())),
        };
        Ok(ArpSender {
            interface: interface.to_owned(),
            mac,
            tx,
        })
    }

    /// One gratuitous ARP request per VIP (RFC 5798 Section 6.4.1 (b)).
    pub fn announce(&mut self, vips: &[Ipv4Addr]) -> Result<(), AddrError> {
        for vip in vips {
            let frame = garp_frame(self.mac, *vip);
            let reason = match self.tx.send_to(&frame, None) {
                Some(Ok(())) => continue,
                Some(Err(e)) => e.to_string(),
                None => "send failed".into(),
            };
            return Err(AddrError::Arp {
                interface: self.interface.clone(),
                reason,
            });
        }
        Ok(())
    }
}

/// An Ethernet broadcast ARP request announcing `vip` at `mac`
/// (sender and target address both the VIP, as keepalived sends it).
///
/// ```text
/// | dst ff:ff:ff:ff:ff:ff | src mac | 0x0806 |
/// | htype 1 | ptype 0x0800 | hlen 6 | plen 4 | oper 1 (request) |
/// | sha = mac | spa = vip | tha = ff:ff:ff:ff:ff:ff | tpa = vip |
/// ```
pub fn garp_frame(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&vip.octets());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_frame_layout() {
        let f = garp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1]);
        assert_eq!(&f[22..28], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&f[28..32], &[10, 0, 0, 100]);
        assert_eq!(&f[38..42], &[10, 0, 0, 100]);
    }
}
