//! What a run does: rooms, participants, media, churn, impairment. Given by
//! flags or by a JSON file (`--scenario FILE`, the same fields as the
//! `scenario` object of a report).

use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

fn seconds(s: &str) -> Result<f64, String> {
    humantime::parse_duration(s)
        .map(|d| d.as_secs_f64())
        .map_err(|e| format!("{s:?}: {e} (e.g. 30s, 2m, 500ms)"))
}

/// A load scenario.
#[derive(Debug, Clone, Args, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Scenario {
    /// Rooms.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Participants per room.
    #[arg(long, default_value_t = 4)]
    pub participants: usize,
    /// Publishers per room (the first ones to join); default: all.
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Audio only: publishers send no video, and everyone joins to receive
    /// audio only (the `audio_only` join of the signalling protocol).
    #[arg(long)]
    pub audio_only: bool,
    /// Video frames per second.
    #[arg(long, default_value_t = 15)]
    pub fps: u32,
    /// Video bitrate per publisher, kbit/s (the top layer with --simulcast).
    #[arg(long, default_value_t = 300)]
    pub video_kbps: u32,
    /// Publish three simulcast layers (loss is then counted on audio only).
    #[arg(long)]
    pub simulcast: bool,
    /// Pace each video frame's packets at this multiple of the video
    /// bitrate, as browsers do (libwebrtc: 2.5), instead of sending a frame
    /// as one burst. Frame latency then includes the publisher's pacing.
    #[arg(long, value_name = "FACTOR")]
    pub pace_video: Option<f64>,
    /// How long to hold the load after everyone joined, e.g. 30s.
    #[arg(long = "duration", value_parser = seconds, default_value = "30s")]
    pub duration_s: f64,
    /// Leave this long after the ramp-up out of the latency figures, e.g.
    /// 2s: the first frames wait for keyframes and bandwidth estimates. The
    /// per-second timeline still shows them.
    #[arg(long = "warmup", value_parser = seconds, default_value = "0s")]
    pub warmup_s: f64,
    /// Joins per second while ramping up.
    #[arg(long, default_value_t = 50.0)]
    pub ramp: f64,
    /// Leaves (each followed by a fresh join) per second during the hold.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Publishers rotate their SFrame key this often, e.g. 10s.
    #[arg(long = "key-rotation", value_parser = seconds)]
    pub key_rotation_s: Option<f64>,
    /// Random packet loss on every participant's link, percent, each way.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// One-way delay added on every link, e.g. 20ms.
    #[arg(long = "delay", value_parser = seconds, default_value = "0s")]
    pub delay_s: f64,
    /// Extra random delay (jitter) on every link, e.g. 5ms.
    #[arg(long = "jitter", value_parser = seconds, default_value = "0s")]
    pub jitter_s: f64,
    /// Seed of the impairment (same seed, same losses).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Participants per room that use a wrong passphrase (their frames must
    /// be reported as decrypt failures).
    #[arg(long, default_value_t = 0)]
    pub wrong_key: usize,
    /// The rooms' passphrase.
    #[arg(long, default_value = "correct horse battery staple")]
    pub passphrase: String,
    /// Subscribers count the media they receive and drop it unread
    /// (`ClientConfig::sink_media`), so the server is the bottleneck.
    /// Nothing is decrypted or verified then, so it is not a flag of the
    /// load tester: `sfu-throughput --sink` uses it to load the SFU harder
    /// than verifying clients can on the same machine.
    #[arg(skip)]
    pub sink_subscribers: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            rooms: 1,
            participants: 4,
            publishers: None,
            audio_only: false,
            fps: 15,
            video_kbps: 300,
            simulcast: false,
            pace_video: None,
            duration_s: 30.0,
            warmup_s: 0.0,
            ramp: 50.0,
            churn: 0.0,
            key_rotation_s: None,
            loss: 0.0,
            delay_s: 0.0,
            jitter_s: 0.0,
            seed: 1,
            wrong_key: 0,
            passphrase: "correct horse battery staple".into(),
            sink_subscribers: false,
        }
    }
}

impl Scenario {
    /// Checks the numbers make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.rooms == 0 || self.participants == 0 {
            return Err("--rooms and --participants must be at least 1".into());
        }
        if self
            .pace_video
            .is_some_and(|f| !(f.is_finite() && (1.0..=100.0).contains(&f)))
        {
            return Err("--pace-video must be a factor from 1 to 100 (browsers use 2.5)".into());
        }
        if self.publishers.is_some_and(|p| p > self.participants) {
            return Err("--publishers cannot exceed --participants".into());
        }
        if self.wrong_key > self.participants {
            return Err("--wrong-key cannot exceed --participants".into());
        }
        if !(0.0..=100.0).contains(&self.loss) {
            return Err("--loss is a percentage, 0 to 100".into());
        }
        if self.ramp <= 0.0 || self.churn < 0.0 || self.fps == 0 {
            return Err("--ramp and --fps must be positive and --churn not negative".into());
        }
        if self.duration_s <= 0.0 {
            return Err("--duration must be positive".into());
        }
        if !(0.0..self.duration_s).contains(&self.warmup_s) {
            return Err("--warmup must be shorter than --duration".into());
        }
        Ok(())
    }

    /// Publishers per room.
    pub fn publishers(&self) -> usize {
        self.publishers.unwrap_or(self.participants)
    }

    /// Everyone, over all rooms.
    pub fn total(&self) -> usize {
        self.rooms * self.participants
    }

    /// Whether any link is impaired.
    pub fn impaired(&self) -> bool {
        self.loss > 0.0 || self.delay_s > 0.0 || self.jitter_s > 0.0
    }

    /// The hold time.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_s)
    }
}

/// `i/n`: this process runs every participant whose global index is `i`
/// modulo `n`, so `n` processes split one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: write the shard as i/n, e.g. 0/4"))?;
        let index: usize = i.parse().map_err(|_| format!("{s:?}: bad shard index"))?;
        let count: usize = n.parse().map_err(|_| format!("{s:?}: bad shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("{s:?}: need 0 <= i < n"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether this shard runs participant number `global`.
    pub fn owns(&self, global: usize) -> bool {
        global % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_everyone_exactly_once() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for global in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.owns(global)).count(), 1);
        }
        for bad in ["3/3", "1", "a/2", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scenario_file_needs_only_what_differs() {
        let s: Scenario = serde_json::from_str(r#"{"rooms": 5, "audio_only": true}"#).unwrap();
        assert_eq!((s.rooms, s.participants, s.audio_only), (5, 4, true));
        assert!(s.validate().is_ok());
        let bad = Scenario {
            publishers: Some(9),
            ..Scenario::default()
        };
        assert!(bad.validate().is_err());
        let warmup_past_the_end = Scenario {
            duration_s: 5.0,
            warmup_s: 5.0,
            ..Scenario::default()
        };
        assert!(
            warmup_past_the_end
                .validate()
                .unwrap_err()
                .contains("--warmup")
        );
        for factor in [0.5, f64::NAN, f64::INFINITY] {
            let pace = Scenario {
                pace_video: Some(factor),
                ..Scenario::default()
            };
            assert!(pace.validate().unwrap_err().contains("--pace-video"));
        }
        let browser_like = Scenario {
            pace_video: Some(2.5),
            ..Scenario::default()
        };
        assert_eq!(browser_like.validate(), Ok(()));
    }
}
