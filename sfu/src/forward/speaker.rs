//! Active-speaker detection from the RFC 6464 audio-level header extension.
//!
//! Audio levels travel in the clear in an RTP header extension (the payload
//! stays encrypted), as `-dBov` in `0..=127` where 0 is loudest. The detector
//! smooths them per participant over a short window, ranks participants who
//! are audibly speaking, and reports when the ranking changes. The same
//! ranking tells the forwarder which audio streams are the loudest N.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Level (in -dBov) at or above which a participant counts as silent.
pub const SILENCE_DBOV: u8 = 70;

/// Tunables for [`SpeakerDetector`].
#[derive(Debug, Clone, Copy)]
pub struct SpeakerConfig {
    /// How often a new ranking may be published.
    pub interval: Duration,
    /// Smoothing factor for each new sample (0..1); higher reacts faster.
    pub smoothing: f32,
    /// A participant with no sample for this long is silent.
    pub stale_after: Duration,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            interval: Duration::from_millis(300),
            smoothing: 0.2,
            stale_after: Duration::from_millis(1000),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Loudness {
    /// Smoothed loudness, `127 - dBov` (higher is louder).
    value: f32,
    last_sample: Instant,
}

/// Ranks participants by recent loudness.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use sfu::forward::speaker::{SpeakerDetector, SpeakerConfig};
/// let t0 = Instant::now();
/// let mut d = SpeakerDetector::new(SpeakerConfig::default());
/// for i in 0..50 {
///     let t = t0 + Duration::from_millis(i * 20);
///     d.observe("alice", 60, t); // quiet
///     d.observe("bob", 20, t);   // loud
/// }
/// let ranking = d.poll(t0 + Duration::from_secs(1)).unwrap();
/// assert_eq!(ranking, vec!["bob", "alice"]);
/// ```
#[derive(Debug)]
pub struct SpeakerDetector<K> {
    config: SpeakerConfig,
    levels: HashMap<K, Loudness>,
    last_published: Vec<K>,
    next_publish: Option<Instant>,
}

impl<K: Copy + Eq + Hash + Ord> SpeakerDetector<K> {
    /// A detector with the given tuning.
    pub fn new(config: SpeakerConfig) -> Self {
        SpeakerDetector {
            config,
            levels: HashMap::new(),
            last_published: Vec::new(),
            next_publish: None,
        }
    }

    /// Records one audio-level sample (`dbov` 0 = loudest, 127 = silence).
    pub fn observe(&mut self, who: K, dbov: u8, now: Instant) {
        let loudness = 127.0 - dbov.min(127) as f32;
        let alpha = self.config.smoothing;
        self.levels
            .entry(who)
            .and_modify(|l| {
                l.value += alpha * (loudness - l.value);
                l.last_sample = now;
            })
            .or_insert(Loudness {
                value: loudness * alpha,
                last_sample: now,
            });
    }

    /// Forgets a participant who left.
    pub fn remove(&mut self, who: &K) {
        self.levels.remove(who);
    }

    /// Current ranking, loudest first, of participants above the silence floor.
    pub fn ranking(&self, now: Instant) -> Vec<K> {
        let floor = 127.0 - SILENCE_DBOV as f32;
        let mut speaking: Vec<(K, f32)> = self
            .levels
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.last_sample) < self.config.stale_after)
            .filter(|(_, l)| l.value > floor)
            .map(|(k, l)| (*k, l.value))
            .collect();
        speaking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        speaking.into_iter().map(|(k, _)| k).collect()
    }

    /// True when `who` is among the `n` loudest right now (or when fewer
    /// than `n` people are speaking, anyone who spoke recently).
    pub fn is_among_loudest(&self, who: &K, n: usize, now: Instant) -> bool {
        self.ranking(now).iter().take(n).any(|k| k == who)
    }

    /// Returns a new ranking when one is due and differs from the last one.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<K>> {
        if self.next_publish.is_some_and(|t| now < t) {
            return None;
        }
        self.next_publish = Some(now + self.config.interval);
        let ranking = self.ranking(now);
        if ranking == self.last_published {
            return None;
        }
        self.last_published = ranking.clone();
        Some(ranking)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(
        d: &mut SpeakerDetector<u32>,
        t0: Instant,
        from_ms: u64,
        to_ms: u64,
        levels: &[(u32, u8)],
    ) {
        for ms in (from_ms..to_ms).step_by(20) {
            for (who, level) in levels {
                d.observe(*who, *level, t0 + Duration::from_millis(ms));
            }
        }
    }

    #[test]
    fn ranking_follows_the_loudest_and_silence_is_not_speech() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        feed(&mut d, t0, 0, 1000, &[(1, 30), (2, 100), (3, 127)]);
        assert_eq!(d.poll(t0 + Duration::from_millis(1000)), Some(vec![1]));
        // Participant 2 starts shouting, 1 falls silent.
        feed(&mut d, t0, 1000, 2000, &[(1, 127), (2, 10), (3, 127)]);
        assert_eq!(d.poll(t0 + Duration::from_millis(2000)), Some(vec![2]));
        // Unchanged ranking is not republished.
        feed(&mut d, t0, 2000, 2400, &[(1, 127), (2, 10), (3, 127)]);
        assert_eq!(d.poll(t0 + Duration::from_millis(2400)), None);
    }

    #[test]
    fn publishing_is_rate_limited_and_stale_speakers_drop_out() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(SpeakerConfig::default());
        feed(&mut d, t0, 0, 500, &[(7, 20)]);
        assert_eq!(d.poll(t0 + Duration::from_millis(500)), Some(vec![7]));
        feed(&mut d, t0, 500, 600, &[(8, 5)]);
        assert_eq!(
            d.poll(t0 + Duration::from_millis(600)),
            None,
            "within interval"
        );
        // Nobody sends for 2 s: everyone is stale.
        assert_eq!(d.poll(t0 + Duration::from_millis(2600)), Some(vec![]));
        assert!(!d.is_among_loudest(&7, 3, t0 + Duration::from_millis(2600)));
    }
}
