//! Rate limits per client address: joins (new caption connections) and wrong PINs. Pure: the
//! caller says what time it is.
//!
//! A fixed window per address: at most `max` events in each `window_ms`. The table of
//! addresses is bounded (`MAX_ADDRESSES`); when it is full, windows that have ended are
//! forgotten, and if it is still full a new address is refused until some end — a flood from
//! many addresses costs memory no further and delays only newcomers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses remembered at once (a venue has hundreds of phones, not tens of thousands).
pub const MAX_ADDRESSES: usize = 10_000;

pub struct RateLimit {
    max: u32,
    window_ms: u64,
    /// Per address: when its window started, and the events in it.
    seen: Mutex<HashMap<IpAddr, (u64, u32)>>,
}

impl RateLimit {
    pub fn new(max: u32, window_ms: u64) -> RateLimit {
        RateLimit {
            max,
            window_ms,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` is still under the limit at `now_ms` (nothing is counted).
    pub fn allows(&self, ip: IpAddr, now_ms: u64) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(&ip) {
            Some(&(start, n)) if now_ms < start + self.window_ms => n < self.max,
            _ => true,
        }
    }

    /// Counts one event for `ip` at `now_ms`; `false` if it goes over the limit (or the table
    /// is full of live windows).
    pub fn hit(&self, ip: IpAddr, now_ms: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_ADDRESSES && !seen.contains_key(&ip) {
            let window = self.window_ms;
            seen.retain(|_, (start, _)| now_ms < *start + window);
            if seen.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        let entry = seen.entry(ip).or_insert((now_ms, 0));
        if now_ms >= entry.0 + self.window_ms {
            *entry = (now_ms, 0);
        }
        entry.1 += 1;
        entry.1 <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 168, 1, last])
    }

    #[test]
    fn at_most_max_in_a_window_then_again_after_it() {
        let l = RateLimit::new(5, 60_000);
        for i in 0..5 {
            assert!(l.allows(ip(1), i * 10));
            assert!(l.hit(ip(1), i * 10), "event {i}");
        }
        assert!(!l.allows(ip(1), 100));
        assert!(!l.hit(ip(1), 100), "the sixth in the minute is refused");
        assert!(l.hit(ip(2), 100), "another address is not affected");
        assert!(!l.allows(ip(1), 59_999));
        assert!(l.allows(ip(1), 60_000), "a new window");
        assert!(l.hit(ip(1), 60_000));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_ended_windows() {
        let l = RateLimit::new(1, 1_000);
        for i in 0..MAX_ADDRESSES as u32 {
            assert!(l.hit(IpAddr::from(i.to_be_bytes()), 0));
        }
        let newcomer = IpAddr::from([10, 255, 0, 1]);
        assert!(
            !l.hit(newcomer, 500),
            "full of live windows: refused, memory bounded"
        );
        assert!(
            l.hit(newcomer, 1_000),
            "the old windows ended and were forgotten"
        );
        assert_eq!(l.seen.lock().unwrap().len(), 1);
    }
}
