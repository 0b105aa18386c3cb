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
//! Outgoing streams stay in a `HashMap`: an SFU's subscriber sends one per
//! forwarded track, which can be hundreds.

use crate::rtp_::Ssrc;

/// Values by SSRC, the keys kept apart from the values so a lookup scans
/// only keys.
#[derive(Debug)]
pub(crate) struct SsrcMap<V> {
    keys: Vec<Ssrc>,
    values: Vec<V>,
}

impl<V> Default for SsrcMap<V> {
    fn default() -> Self {
        SsrcMap {
            keys: Vec::new(),
            values: Vec::new(),
        }
    }
}

impl<V> SsrcMap<V> {
    fn position(&self, key: Ssrc) -> Option<usize> {
        self.keys.iter().position(|k| *k == key)
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
                self.keys.push(key);
                self.values.push(value);
                None
            }
        }
    }

    /// The value for `key`, made by `make` if there is none.
    pub fn get_or_insert_with(&mut self, key: Ssrc, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.keys.push(key);
                self.values.push(make());
                self.values.len() - 1
            }
        };
        &mut self.values[i]
    }

    pub fn remove(&mut self, key: &Ssrc) -> Option<V> {
        let i = self.position(*key)?;
        self.keys.swap_remove(i);
        Some(self.values.swap_remove(i))
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Ssrc, &mut V) -> bool) {
        let mut i = 0;
        while i < self.keys.len() {
            if keep(&self.keys[i], &mut self.values[i]) {
                i += 1;
            } else {
                self.keys.swap_remove(i);
                self.values.swap_remove(i);
            }
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
}
