use super::*;

use rand::{Rng, SeedableRng};

/// Parses tcpdump `-xx` hex (Ethernet frame) and drops the 14-byte Ethernet header.
fn frame(hex: &str) -> Vec<u8> {
    let digits: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect();
    bytes[14..].to_vec()
}

const SRC: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);

// Captured from Debian's keepalived 2.2.7 (vrid 51, priority 150, advert_int 1,
// VIPs 10.9.0.100 and 10.9.0.101) with `tcpdump -xx`.
const KEEPALIVED_V2: &str = "0100 5e00 0012 7e77 39e4 63a6 0800 45c0
    002c 0001 0000 ff70 d084 0a09 0001 e000 0012 2133 9602 0001 33ee 0a09 0064 0a09
    0065 0000 0000 0000 0000";
const KEEPALIVED_V3: &str = "0100 5e00 0012 7e77 39e4 63a6 0800 45c0
    0024 0001 0000 ff70 d08c 0a09 0001 e000 0012 3133 9602 0064 38ee 0a09 0064 0a09
    0065";
// vrid 52, priority 100, `auth_type PASS`, `auth_pass secret1`, VIP 10.9.0.102.
const KEEPALIVED_V2_PASS: &str = "0100 5e00 0012 7e77 39e4 63a6 0800 45c0
    0028 0001 0000 ff70 d088 0a09 0001 e000 0012 2134 6401 0101 020e 0a09 0066 7365
    6372 6574 3100";
// The same instance stopping: priority 0.
const KEEPALIVED_V2_PASS_PRIO0: &str = "0100 5e00 0012 7e77 39e4 63a6 0800 45c0
    0028 0003 0000 ff70 d086 0a09 0001 e000 0012 2134 0001 0101 660e 0a09 0066 7365
    6372 6574 3100";

fn vips() -> Vec<Ipv4Addr> {
    vec![Ipv4Addr::new(10, 9, 0, 100), Ipv4Addr::new(10, 9, 0, 101)]
}

#[test]
fn decodes_keepalived_v3() {
    let r = decode_ipv4(&frame(KEEPALIVED_V3)).unwrap();
    assert_eq!(r.src, SRC);
    assert_eq!(r.dst, MULTICAST_GROUP);
    assert_eq!(
        r.advert,
        Advert {
            version: Version::V3,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            addrs: vips(),
            auth: Auth::None,
        }
    );
}

#[test]
fn decodes_keepalived_v2_and_pass_auth() {
    let r = decode_ipv4(&frame(KEEPALIVED_V2)).unwrap();
    assert_eq!(r.advert.version, Version::V2);
    assert_eq!(r.advert.interval_cs, 100);
    assert_eq!(r.advert.addrs, vips());
    let r = decode_ipv4(&frame(KEEPALIVED_V2_PASS)).unwrap();
    assert_eq!(r.advert.auth, Auth::pass("secret1"));
    assert_eq!(r.advert.vrid, 52);
    let r = decode_ipv4(&frame(KEEPALIVED_V2_PASS_PRIO0)).unwrap();
    assert_eq!(r.advert.priority, 0);
}

#[test]
fn encodes_keepalived_bytes_exactly() {
    let cases = [
        (KEEPALIVED_V3, Version::V3, 51, 150, vips(), Auth::None),
        (KEEPALIVED_V2, Version::V2, 51, 150, vips(), Auth::None),
        (
            KEEPALIVED_V2_PASS,
            Version::V2,
            52,
            100,
            vec![Ipv4Addr::new(10, 9, 0, 102)],
            Auth::pass("secret1"),
        ),
    ];
    for (hex, version, vrid, priority, addrs, auth) in cases {
        let advert = Advert {
            version,
            vrid,
            priority,
            interval_cs: 100,
            addrs,
            auth,
        };
        let got = advert.encode(SRC, MULTICAST_GROUP, ChecksumMode::PseudoHeader);
        assert_eq!(got, frame(hex)[20..], "{version:?} vrid {vrid}");
    }
}

#[test]
fn v3_accepts_message_only_checksum() {
    let advert = Advert {
        version: Version::V3,
        vrid: 7,
        priority: 100,
        interval_cs: 10,
        addrs: vec![Ipv4Addr::new(10, 0, 0, 7)],
        auth: Auth::None,
    };
    let msg = advert.encode(SRC, MULTICAST_GROUP, ChecksumMode::MessageOnly);
    assert_eq!(decode(&msg, SRC, MULTICAST_GROUP).unwrap(), advert);
    let with = advert.encode(SRC, MULTICAST_GROUP, ChecksumMode::PseudoHeader);
    assert_ne!(msg[6..8], with[6..8]);
    // The pseudo-header form is bound to its addresses.
    assert_eq!(
        decode(&with, Ipv4Addr::new(10, 9, 0, 2), MULTICAST_GROUP),
        Err(DecodeError::Checksum)
    );
}

#[test]
fn rejects_each_invalid_field() {
    let good = frame(KEEPALIVED_V3);
    let mut bad_ttl = good.clone();
    bad_ttl[8] = 64;
    assert_eq!(decode_ipv4(&bad_ttl), Err(DecodeError::Ttl(64)));
    assert_eq!(decode_ipv4(&good[..30]), Err(DecodeError::Truncated));
    let mut proto = good.clone();
    proto[9] = 17;
    assert_eq!(decode_ipv4(&proto), Err(DecodeError::IpHeader));
    let msg = &good[20..];
    let mut m = msg.to_vec();
    m[0] = 0x41;
    assert_eq!(
        decode(&m, SRC, MULTICAST_GROUP),
        Err(DecodeError::Version(4))
    );
    m[0] = 0x32;
    assert_eq!(decode(&m, SRC, MULTICAST_GROUP), Err(DecodeError::Type(2)));
    let mut m = msg.to_vec();
    m[3] = 3;
    assert_eq!(decode(&m, SRC, MULTICAST_GROUP), Err(DecodeError::Length));
    m[3] = 0;
    assert_eq!(
        decode(&m, SRC, MULTICAST_GROUP),
        Err(DecodeError::AddrCount)
    );
    let mut m = msg.to_vec();
    m[2] ^= 1;
    assert_eq!(decode(&m, SRC, MULTICAST_GROUP), Err(DecodeError::Checksum));
}

/// Property: every advert we can encode decodes to itself, in both checksum
/// modes; a flipped bit anywhere is never accepted as the same advert.
#[test]
fn round_trips_random_adverts() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5798);
    for _ in 0..2000 {
        let version = if rng.gen() { Version::V2 } else { Version::V3 };
        let n = rng.gen_range(1..=20);
        let addrs = (0..n).map(|_| Ipv4Addr::from(rng.gen::<u32>())).collect();
        let interval_cs = match version {
            Version::V3 => rng.gen_range(1..=4095),
            Version::V2 => rng.gen_range(1..=255u16) * 100,
        };
        let auth = match version {
            Version::V2 if rng.gen() => Auth::Pass(rng.gen()),
            _ => Auth::None,
        };
        let advert = Advert {
            version,
            vrid: rng.gen_range(1..=255),
            priority: rng.gen(),
            interval_cs,
            addrs,
            auth,
        };
        let (src, dst) = (Ipv4Addr::from(rng.gen::<u32>()), MULTICAST_GROUP);
        let mode = if rng.gen() {
            ChecksumMode::PseudoHeader
        } else {
            ChecksumMode::MessageOnly
        };
        let msg = advert.encode(src, dst, mode);
        assert_eq!(decode(&msg, src, dst).as_ref(), Ok(&advert));
        let mut flipped = msg.clone();
        let bit = rng.gen_range(0..flipped.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert_ne!(decode(&flipped, src, dst).as_ref(), Ok(&advert));
    }
}
