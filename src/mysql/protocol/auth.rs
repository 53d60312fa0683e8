//! Authentication scrambles, both directions.
//!
//! - `mysql_native_password` (MariaDB "Authentication plugin -
//!   mysql_native_password"): `token = SHA1(pw) XOR SHA1(scramble . SHA1(SHA1(pw)))`.
//!   Knowing the stored hash `SHA1(SHA1(pw))`, a server recovers `SHA1(pw)` from
//!   the token; that is enough to log into a backend with the same password,
//!   so tandem never needs the clear text for native users.
//! - `caching_sha2_password` (MySQL "Caching_sha2_password information"):
//!   fast auth `token = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) . scramble)`;
//!   full auth sends the clear text over TLS, or RSA-OAEP encrypted
//!   `(pw . NUL) XOR scramble` after the client asked for the public key.

use rand::Rng;
use sha1::{Digest, Sha1};
use sha2::Sha256;

pub const NATIVE: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";
pub const CLEAR: &str = "mysql_clear_password";

/// caching_sha2_password protocol bytes (after a 0x01 "more data" header).
pub const SHA2_REQUEST_PUBLIC_KEY: u8 = 0x02;
pub const SHA2_FAST_AUTH_OK: u8 = 0x03;
pub const SHA2_PERFORM_FULL_AUTH: u8 = 0x04;

/// What tandem knows of a password, enough to log into a backend.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The clear-text password (configured, or received by full auth).
    Plain(String),
    /// `SHA1(pw)`, recovered from a native-password exchange: enough for
    /// `mysql_native_password` backends only.
    NativeStage1([u8; 20]),
    /// Nothing reusable: the login was relayed to the backend (pass-through
    /// of a plugin tandem cannot check itself), and only the connection it
    /// opened is authenticated.
    RelayedOnly,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Secret::Plain(..)"),
            Secret::NativeStage1(_) => f.write_str("Secret::NativeStage1(..)"),
            Secret::RelayedOnly => f.write_str("Secret::RelayedOnly"),
        }
    }
}

/// A fresh 20-byte scramble: printable-safe bytes, never NUL (the handshake
/// sends part of it NUL-terminated).
pub fn new_scramble() -> [u8; 20] {
    let mut rng = rand::thread_rng();
    let mut s = [0u8; 20];
    for b in &mut s {
        *b = rng.gen_range(0x21..0x7F);
    }
    s
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn xor<const N: usize>(a: &[u8; N], b: &[u8; N]) -> [u8; N] {
    let mut o = [0u8; N];
    for i in 0..N {
        o[i] = a[i] ^ b[i];
    }
    o
}

/// `SHA1(SHA1(pw))`: what `PASSWORD()` shows after the `*`.
pub fn native_hash(password: &str) -> [u8; 20] {
    sha1(&[&sha1(&[password.as_bytes()])])
}

/// Client side: the native token from the password's `SHA1(pw)`.
pub fn native_token_from_stage1(stage1: &[u8; 20], scramble: &[u8]) -> [u8; 20] {
    let stage2 = sha1(&[stage1]);
    xor(
        stage1,
        &sha1(&[&scramble[..20.min(scramble.len())], &stage2]),
    )
}

/// Client side: the native token from a clear-text password (empty password
/// sends an empty token).
pub fn native_token(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    native_token_from_stage1(&sha1(&[password.as_bytes()]), scramble).to_vec()
}

/// Server side: checks a native token against the stored hash; on success
/// returns the recovered `SHA1(pw)`.
pub fn native_verify(stored_hash: &[u8; 20], scramble: &[u8], token: &[u8]) -> Option<[u8; 20]> {
    let token: &[u8; 20] = token.try_into().ok()?;
    let stage1 = xor(
        token,
        &sha1(&[&scramble[..20.min(scramble.len())], stored_hash]),
    );
    (sha1(&[&stage1]) == *stored_hash).then_some(stage1)
}

/// Client side: the caching_sha2_password fast-auth token.
pub fn sha2_token(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let p1 = sha256(&[password.as_bytes()]);
    let p2 = sha256(&[&p1]);
    let p3 = sha256(&[&p2, &scramble[..20.min(scramble.len())]]);
    xor(&p1, &p3).to_vec()
}

/// Server side: checks a caching_sha2 fast-auth token against a clear-text
/// password (constant work, no early exit on the first differing byte).
pub fn sha2_verify(password: &str, scramble: &[u8], token: &[u8]) -> bool {
    let expect = sha2_token(password, scramble);
    expect.len() == token.len() && expect.iter().zip(token).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
}

/// `(pw . NUL) XOR scramble`, the plaintext of the RSA exchange (both ways).
pub fn xor_with_scramble(data: &[u8], scramble: &[u8]) -> Vec<u8> {
    data.iter()
        .enumerate()
        .map(|(i, b)| b ^ scramble[i % scramble.len()])
        .collect()
}

/// Constant-time comparison of clear-text passwords.
pub fn plain_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `"*"` + 40 hex digits (either case) -> the 20-byte `SHA1(SHA1(password))`.
pub fn parse_native_hash(text: &str) -> Option<[u8; 20]> {
    let hex = text.strip_prefix('*')?.as_bytes();
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *byte = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_matches_mariadb_password_function() {
        // SELECT PASSWORD('apppass') on MariaDB.
        let h = native_hash("password");
        let hex: String = h.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, "2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19");
    }

    #[test]
    fn native_verify_recovers_stage1() {
        let scramble = new_scramble();
        let token = native_token("s3cret", &scramble);
        let stage1 = native_verify(&native_hash("s3cret"), &scramble, &token).unwrap();
        assert_eq!(stage1, sha1(&[b"s3cret"]));
        // The recovered stage1 produces the same token for another scramble.
        let other = new_scramble();
        assert_eq!(
            native_token_from_stage1(&stage1, &other).to_vec(),
            native_token("s3cret", &other)
        );
        assert!(native_verify(&native_hash("wrong"), &scramble, &token).is_none());
        assert!(native_verify(&native_hash("s3cret"), &scramble, &token[..5]).is_none());
    }

    #[test]
    fn sha2_round_trip() {
        let s = new_scramble();
        assert!(sha2_verify("pw", &s, &sha2_token("pw", &s)));
        assert!(!sha2_verify("pw", &s, &sha2_token("px", &s)));
        assert!(sha2_verify("", &s, &[]));
    }

    #[test]
    fn scramble_has_no_nul() {
        for _ in 0..100 {
            assert!(!new_scramble().contains(&0));
        }
    }
}
