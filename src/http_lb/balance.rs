//! Pure balancing algorithms over the servers that may take a request now.
//! Randomness and the rotor come in as arguments, so every choice is
//! reproducible in tests.

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

/// A server that may take the request, as the balancer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the server in its frontend.
    pub index: usize,
    /// Effective weight (after slow start), at least 1.
    pub weight: u32,
    /// Requests in flight on it now.
    pub active: usize,
    /// A stable hash of the server's name (for `source`).
    pub name_hash: u64,
}

/// Smooth weighted round-robin, nginx's `ngx_http_upstream_get_peer`: every
/// candidate's current weight grows by its weight, the largest wins and
/// pays the total back. Weights 5,1,1 give a a a b a c a... spread evenly
/// rather than in bursts. `current` holds one entry per server of the frontend.
pub fn smooth_round_robin(current: &mut [i64], candidates: &[Candidate]) -> usize {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for c in candidates {
        let w = i64::from(c.weight);
        current[c.index] += w;
        total += w;
        if best.is_none_or(|b| current[c.index] > current[b]) {
            best = Some(c.index);
        }
    }
    let best = best.expect("candidates is not empty");
    current[best] -= total;
    best
}

/// Fewest requests in flight per unit of weight; ties go round by `rotor`.
pub fn least_connections(candidates: &[Candidate], rotor: usize) -> usize {
    let n = candidates.len();
    let mut best = candidates[rotor % n];
    for i in 1..n {
        let c = candidates[(rotor + i) % n];
        // a.active / a.weight < b.active / b.weight, without division.
        if (c.active as u128) * u128::from(best.weight)
            < (best.active as u128) * u128::from(c.weight)
        {
            best = c;
        }
    }
    best.index
}

/// "Power of two choices": two candidates drawn by weight (`r1`, `r2`
/// uniform random numbers), the one with fewer requests in flight per
/// weight wins.
pub fn random_two(candidates: &[Candidate], r1: u64, r2: u64) -> usize {
    let a = by_weight(candidates, r1);
    if candidates.len() == 1 {
        return a.index;
    }
    let mut b = by_weight(candidates, r2);
    if b.index == a.index {
        // Draw the other one among the rest, so two distinct servers compete.
        let pos = candidates
            .iter()
            .position(|c| c.index == a.index)
            .unwrap_or(0);
        b = candidates[(pos + 1 + (r2 as usize % (candidates.len() - 1))) % candidates.len()];
    }
    if (b.active as u128) * u128::from(a.weight) < (a.active as u128) * u128::from(b.weight) {
        b.index
    } else {
        a.index
    }
}

/// Weighted rendezvous hashing of the client address: each client sticks
/// to one server, and when a server leaves only its own clients move.
pub fn source_hash(candidates: &[Candidate], client: IpAddr) -> usize {
    let ip = hash_of(&client);
    let mut best = (f64::NEG_INFINITY, candidates[0].index);
    for c in candidates {
        let h = mix(ip ^ c.name_hash);
        // Map to (0, 1], then the weighted score -w / ln(u).
        let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let score = -f64::from(c.weight) / u.ln();
        if score > best.0 {
            best = (score, c.index);
        }
    }
    best.1
}

/// A stable 64-bit hash (FNV-1a over the value's `Hash` bytes): the same
/// in every process, so two balancer nodes send a client to the same server.
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    struct Fnv(u64);
    impl Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    value.hash(&mut h);
    mix(h.finish())
}

/// splitmix64's finaliser: spreads nearby inputs over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn by_weight(candidates: &[Candidate], r: u64) -> Candidate {
    let total: u64 = candidates.iter().map(|c| u64::from(c.weight)).sum();
    let mut point = r % total;
    for c in candidates {
        let w = u64::from(c.weight);
        if point < w {
            return *c;
        }
        point -= w;
    }
    candidates[candidates.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| Candidate {
                index,
                weight,
                active: 0,
                name_hash: hash_of(&format!("s{index}")),
            })
            .collect()
    }

    #[test]
    fn smooth_round_robin_follows_nginx_order_and_weights() {
        let c = cands(&[5, 1, 1]);
        let mut cur = vec![0; 3];
        let order: Vec<usize> = (0..7).map(|_| smooth_round_robin(&mut cur, &c)).collect();
        assert_eq!(order, [0, 0, 1, 0, 2, 0, 0]);
        let c = cands(&[3, 1]);
        let mut cur = vec![0; 2];
        let mut n = [0; 2];
        for _ in 0..4000 {
            n[smooth_round_robin(&mut cur, &c)] += 1;
        }
        assert_eq!(n, [3000, 1000]);
    }

    #[test]
    fn smooth_round_robin_skips_servers_that_left() {
        let all = cands(&[1, 1, 1]);
        let mut cur = vec![0; 3];
        let without_1: Vec<_> = all.iter().copied().filter(|c| c.index != 1).collect();
        for _ in 0..10 {
            assert_ne!(smooth_round_robin(&mut cur, &without_1), 1);
        }
    }

    #[test]
    fn least_connections_prefers_the_least_loaded_per_weight() {
        let mut c = cands(&[1, 1, 2]);
        c[0].active = 3;
        c[1].active = 1;
        c[2].active = 3;
        assert_eq!(least_connections(&c, 0), 1);
        c[1].active = 2; // 2/1 > 3/2
        assert_eq!(least_connections(&c, 0), 2);
        // Ties rotate.
        let idle = cands(&[1, 1, 1]);
        let picks: Vec<_> = (0..3).map(|r| least_connections(&idle, r)).collect();
        assert_eq!(picks, [0, 1, 2]);
    }

    #[test]
    fn random_two_picks_the_less_loaded_of_two_distinct() {
        let mut c = cands(&[1, 1]);
        c[0].active = 5;
        for r in 0..20 {
            assert_eq!(random_two(&c, r, r), 1, "draws {r}");
        }
        let one = cands(&[1]);
        assert_eq!(random_two(&one, 7, 9), 0);
    }

    #[test]
    fn source_hash_is_stable_and_moves_only_the_clients_of_a_leaving_server() {
        let all = cands(&[1, 1, 1]);
        let without_2: Vec<_> = all.iter().copied().filter(|c| c.index != 2).collect();
        let mut counts = [0; 3];
        for i in 0..3000u32 {
            let ip = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            let first = source_hash(&all, ip);
            assert_eq!(first, source_hash(&all, ip));
            counts[first] += 1;
            if first != 2 {
                assert_eq!(source_hash(&without_2, ip), first);
            }
        }
        for n in counts {
            assert!((800..1200).contains(&n), "{counts:?}");
        }
    }
}
