//! A map keyed by SSRC for the few streams one `Rtc` receives (Veil patch).
//!
//! Every received RTP packet looks its SSRC up three times: which mid and
//! main SSRC it belongs to, its receive stream, and the highest sequence
//! number seen. An `Rtc` receives a handful of SSRCs (a main and an RTX one
//! per track), so a scan of their keys, which sit together in one vector,
//! finds one without hashing and touches one cache line for the keys where a
//! hash table touches its control bytes and a bucket. Iteration follows
//! insertion order, except that a removal moves the last entry into the gap.
//!
//! A peer decides how many SSRCs it sends, and every one that passes SRTP
//! gets an entry in the session's sequence-number map. Past
//! [`SCAN_LIMIT`] keys the map therefore also keeps a hash index, so a peer
//! that sprays SSRCs costs one hash probe per packet, as before the patch,
//! and never a scan of thousands of keys.
//!
//! Outgoing streams use it too (Veil patch 13): an SFU writes every
//! forwarded packet to its subscriber's send stream by SSRC, and a
//! subscriber in a small room has a few of them. One in a large room can
//! have hundreds, and then it is the hash index that finds them.

use std::collections::HashMap;

use crate::rtp_::Ssrc;

/// Up to this many keys a lookup scans them; past it, it asks the index.
const SCAN_LIMIT: usize = 32;

/// Values by SSRC, the keys kept apart from the values so a lookup scans
/// only keys.
#[derive(Debug)]
pub(crate) struct SsrcMap<V> {
    keys: Vec<Ssrc>,
    values: Vec<V>,
    /// Position of each key, kept only while there are more than
    /// [`SCAN_LIMIT`] of them.
    index: HashMap<Ssrc, usize>,
}

impl<V> Default for SsrcMap<V> {
    fn default() -> Self {
        SsrcMap {
            keys: Vec::new(),
            values: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<V> SsrcMap<V> {
    fn position(&self, key: Ssrc) -> Option<usize> {
        if self.keys.len() > SCAN_LIMIT {
            self.index.get(&key).copied()
        } else {
            self.keys.iter().position(|k| *k == key)
        }
    }

    fn push(&mut self, key: Ssrc, value: V) -> usize {
        self.keys.push(key);
        self.values.push(value);
        let at = self.keys.len() - 1;
        if self.keys.len() == SCAN_LIMIT + 1 {
            self.reindex();
        } else if self.keys.len() > SCAN_LIMIT {
            self.index.insert(key, at);
        }
        at
    }

    /// After a removal moved entries: the index again matches the keys, or
    /// is dropped when a scan will do.
    fn reindex(&mut self) {
        self.index.clear();
        if self.keys.len() > SCAN_LIMIT {
            self.index
                .extend(self.keys.iter().enumerate().map(|(i, k)| (*k, i)));
        } else {
            self.index.shrink_to_fit();
        }
    }

    pub fn get(&self, key: &Ssrc) -> Option<&V> {
        self.position(*key).map(|i| &self.values[i])
    }

    pub fn get_mut(&mut self, key: &Ssrc) -> Option<&mut V> {
        self.position(*key).map(|i| &mut self.values[i])
    }

    pub fn contains_key(&self, key: &Ssrc) -> bool {
        self.position(*key).is_some()
    }

    /// Inserts or replaces; returns the value replaced.
    pub fn insert(&mut self, key: Ssrc, value: V) -> Option<V> {
        match self.position(key) {
            Some(i) => Some(std::mem::replace(&mut self.values[i], value)),
            None => {
                self.push(key, value);
                None
            }
        }
    }

    /// The value for `key`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, key: Ssrc, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.position(key) {
            Some(i) => i,
            None => self.push(key, make()),
        };
        &mut self.values[i]
    }

    pub fn remove(&mut self, key: &Ssrc) -> Option<V> {
        let i = self.position(*key)?;
        self.keys.swap_remove(i);
        let value = self.values.swap_remove(i);
        if !self.index.is_empty() {
            self.reindex();
        }
        Some(value)
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Ssrc, &mut V) -> bool) {
        let (mut i, before) = (0, self.keys.len());
        while i < self.keys.len() {
            if keep(&self.keys[i], &mut self.values[i]) {
                i += 1;
            } else {
                self.keys.swap_remove(i);
                self.values.swap_remove(i);
            }
        }
        if self.keys.len() != before && !self.index.is_empty() {
            self.reindex();
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &Ssrc> {
        self.keys.iter()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.values.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.values.iter_mut()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn ssrc(n: u32) -> Ssrc {
        n.into()
    }

    #[test]
    fn finds_replaces_and_removes_by_ssrc() {
        let mut map = SsrcMap::default();
        assert_eq!(map.insert(ssrc(7), "a"), None);
        assert_eq!(map.insert(ssrc(9), "b"), None);
        assert_eq!(map.insert(ssrc(7), "c"), Some("a"));
        assert_eq!(map.get(&ssrc(7)), Some(&"c"));
        assert!(map.contains_key(&ssrc(9)));
        assert!(!map.contains_key(&ssrc(8)));

        *map.get_mut(&ssrc(9)).unwrap() = "d";
        assert_eq!(map.remove(&ssrc(7)), Some("c"));
        assert_eq!(map.remove(&ssrc(7)), None);
        assert_eq!(map.get(&ssrc(9)), Some(&"d"));
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec![ssrc(9)]);
    }

    #[test]
    fn get_or_insert_with_makes_a_value_only_when_missing() {
        let mut map = SsrcMap::default();
        *map.get_or_insert_with(ssrc(1), || 10) += 1;
        *map.get_or_insert_with(ssrc(1), || unreachable!("already there")) += 1;
        assert_eq!(map.get(&ssrc(1)), Some(&12));
    }

    #[test]
    fn retain_keeps_keys_and_values_paired() {
        let mut map = SsrcMap::default();
        for n in 0..10u32 {
            map.insert(ssrc(n), n * 100);
        }
        map.retain(|k, v| {
            *v += 1;
            **k % 3 != 0
        });
        let mut left: Vec<_> = map.keys().map(|k| **k).collect();
        left.sort();
        assert_eq!(left, vec![1, 2, 4, 5, 7, 8]);
        for n in left {
            assert_eq!(map.get(&ssrc(n)), Some(&(n * 100 + 1)));
        }
        assert_eq!(map.values_mut().count(), 6);
        assert_eq!(map.values().count(), 6);
    }

    #[test]
    fn many_keys_are_found_through_the_index_and_it_follows_removals() {
        let mut map = SsrcMap::default();
        for n in 0..1000u32 {
            assert_eq!(map.insert(ssrc(n * 7), n), None);
        }
        assert_eq!(map.index.len(), 1000);
        for n in (0..1000u32).step_by(37) {
            assert_eq!(map.get(&ssrc(n * 7)), Some(&n));
        }
        assert!(!map.contains_key(&ssrc(1)));
        assert_eq!(map.insert(ssrc(14), 99), Some(2));

        // A removal moves the last entry into the gap; the index follows.
        assert_eq!(map.remove(&ssrc(0)), Some(0));
        assert_eq!(map.get(&ssrc(999 * 7)), Some(&999));
        assert_eq!(map.get(&ssrc(0)), None);

        map.retain(|k, _| **k % 2 == 0);
        for n in 1..1000u32 {
            let expected = match n {
                2 => Some(99),
                n if (n * 7) % 2 == 0 => Some(n),
                _ => None,
            };
            assert_eq!(map.get(&ssrc(n * 7)).copied(), expected, "ssrc {}", n * 7);
        }

        // Back under the limit, lookups scan again and the index is gone.
        map.retain(|k, _| **k < 100);
        assert!(map.index.is_empty());
        assert_eq!(map.get(&ssrc(98)), Some(&14));
        assert_eq!(map.keys().count(), 7);
    }
}
