//! Simulcast layer selection for one subscriber of one video track.
//!
//! The subscriber's *target* layer comes from what its tile needs (requested
//! size) and what its link can carry (bandwidth estimate). The SFU may only
//! change the layer it forwards at a keyframe of the new layer, otherwise the
//! receiver's decoder would get frames that reference pictures it never saw.
//! Until that keyframe arrives it keeps forwarding the old layer and asks the
//! publisher for a keyframe.

/// Simulcast spatial layer, 0 = lowest resolution.
pub type Layer = u8;

/// Highest layer index Veil uses (three simulcast encodings).
pub const MAX_LAYER: Layer = 2;

/// Maps a RID to a layer index.
///
/// Veil's own clients send `l`, `m`, `h`. Other common schemes are
/// `q`/`h`/`f` (quarter, half, full) and `0`/`1`/`2`. Unknown RIDs fall back to
/// their position in the publisher's `a=simulcast` declaration.
///
/// ```
/// # use sfu::forward::layer::layer_of_rid;
/// assert_eq!(layer_of_rid("h", &["l", "m", "h"]), 2);
/// assert_eq!(layer_of_rid("h", &["q", "h", "f"]), 1);
/// assert_eq!(layer_of_rid("hi-res", &["lo-res", "hi-res"]), 1);
/// ```
pub fn layer_of_rid(rid: &str, declared: &[&str]) -> Layer {
    let has = |r: &str| declared.contains(&r);
    match rid {
        "l" | "q" | "0" => 0,
        "m" | "1" => 1,
        "h" if has("f") || has("q") => 1,
        "h" | "f" | "2" => 2,
        other => declared
            .iter()
            .position(|d| *d == other)
            .map(|p| (p as Layer).min(MAX_LAYER))
            .unwrap_or(0),
    }
}

/// What to do with a packet of the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerDecision {
    /// Forward it; it belongs to the current layer.
    Forward,
    /// Forward it and re-anchor the output stream: the first packet of a
    /// keyframe on the new layer.
    SwitchAndForward,
    /// Not the layer this subscriber gets.
    Drop,
}

/// Layer state of one (subscriber, video track) pair.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    target: Layer,
    current: Option<Layer>,
    switches: u64,
}

impl Default for LayerSelector {
    fn default() -> Self {
        LayerSelector::new(MAX_LAYER)
    }
}

impl LayerSelector {
    /// Starts wanting `target` and forwarding nothing until a keyframe.
    pub fn new(target: Layer) -> Self {
        LayerSelector {
            target,
            current: None,
            switches: 0,
        }
    }

    /// The layer being forwarded, if any.
    pub fn current(&self) -> Option<Layer> {
        self.current
    }

    /// The layer wanted.
    pub fn target(&self) -> Layer {
        self.target
    }

    /// Completed layer switches so far (for metrics).
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// Sets the wanted layer. Returns true when a keyframe on it is now needed.
    pub fn set_target(&mut self, target: Layer) -> bool {
        self.target = target.min(MAX_LAYER);
        self.current != Some(self.target)
    }

    /// A layer the subscriber waits for, if the SFU should ask for a keyframe.
    pub fn pending(&self) -> Option<Layer> {
        (self.current != Some(self.target)).then_some(self.target)
    }

    /// The current layer stopped arriving (publisher paused it): forget it so
    /// that any keyframe of the target restarts forwarding.
    pub fn layer_stopped(&mut self, layer: Layer) {
        if self.current == Some(layer) {
            self.current = None;
        }
    }

    /// Decides for one packet of `layer`; `keyframe_start` marks the first
    /// packet of a keyframe.
    pub fn on_packet(&mut self, layer: Layer, keyframe_start: bool) -> LayerDecision {
        if keyframe_start && layer == self.target && self.current != Some(layer) {
            self.current = Some(layer);
            self.switches += 1;
            return LayerDecision::SwitchAndForward;
        }
        if self.current == Some(layer) {
            LayerDecision::Forward
        } else {
            LayerDecision::Drop
        }
    }
}

/// Picks the highest layer that is published, not above what the subscriber
/// asked for, and whose measured bitrate fits the subscriber's estimate.
///
/// `layer_bps[i]` is the recent bitrate of layer `i`, `None` when it is not
/// arriving. Falls back to the lowest active layer: a subscriber always gets
/// something.
///
/// ```
/// # use sfu::forward::layer::choose_layer;
/// let rates = [Some(150_000), Some(500_000), Some(1_500_000)];
/// assert_eq!(choose_layer(2, Some(2_000_000), &rates), 2);
/// assert_eq!(choose_layer(2, Some(700_000), &rates), 1);
/// assert_eq!(choose_layer(1, None, &rates), 1);
/// assert_eq!(choose_layer(2, Some(10_000), &rates), 0);
/// ```
pub fn choose_layer(
    max_wanted: Layer,
    estimate_bps: Option<u64>,
    layer_bps: &[Option<u64>],
) -> Layer {
    let mut best = None;
    let mut lowest_active = None;
    for (i, rate) in layer_bps.iter().enumerate().take(MAX_LAYER as usize + 1) {
        let Some(rate) = rate else { continue };
        let layer = i as Layer;
        lowest_active.get_or_insert(layer);
        if layer > max_wanted {
            continue;
        }
        if estimate_bps.is_none_or(|e| *rate <= e) {
            best = Some(layer);
        }
    }
    best.or(lowest_active).unwrap_or(0)
}

/// Chooses a layer for each of a subscriber's video tracks within one
/// bandwidth budget. `tracks[i]` is `(max_wanted, layer_bps)` as for
/// [`choose_layer`]; the result is in the same order.
///
/// Every track first gets its lowest active layer. What is left of the
/// budget then lifts tracks one layer at a time, in turns, each towards
/// the layer it wants, while the step up fits. So a call shown as one large
/// tile and several thumbnails spends the budget on the large tile: the
/// thumbnails want layer 0, and leave the rest to it. An equal split would
/// hold the large tile to a fraction of the budget however little the
/// thumbnails need. Within a turn the tracks that want more go first, so
/// when one step is left the larger tile takes it; equal wants go in
/// subscription order. Without an estimate, each track gets the best layer
/// it wants.
///
/// ```
/// # use sfu::forward::layer::allocate_layers;
/// let rates = [Some(150_000), Some(500_000), Some(1_500_000)];
/// // A large tile and three thumbnails share 2 Mbit/s: the large tile
/// // gets the top layer.
/// let tracks = [(2, rates), (0, rates), (0, rates), (0, rates)];
/// assert_eq!(allocate_layers(Some(2_000_000), &tracks), [2, 0, 0, 0]);
/// // Two large tiles: both climb in turns, as far as the budget goes.
/// assert_eq!(allocate_layers(Some(1_200_000), &[(2, rates), (2, rates)]), [1, 1]);
/// ```
pub fn allocate_layers(
    estimate_bps: Option<u64>,
    tracks: &[(Layer, [Option<u64>; MAX_LAYER as usize + 1])],
) -> Vec<Layer> {
    let Some(mut budget) = estimate_bps else {
        return tracks
            .iter()
            .map(|(wanted, rates)| choose_layer(*wanted, None, rates))
            .collect();
    };
    let rate = |rates: &[Option<u64>], l: Layer| rates[l as usize].unwrap_or(0);
    let mut chosen: Vec<Layer> = tracks
        .iter()
        .map(|(_, rates)| {
            let lowest = choose_layer(0, Some(0), rates);
            budget = budget.saturating_sub(rate(rates, lowest));
            lowest
        })
        .collect();
    // Larger wants first; the sort is stable, so ties keep their order.
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tracks[i].0));
    loop {
        let mut lifted = false;
        for &i in &order {
            let ((wanted, rates), layer) = (&tracks[i], &mut chosen[i]);
            let next =
                (*layer + 1..=(*wanted).min(MAX_LAYER)).find(|l| rates[*l as usize].is_some());
            let Some(next) = next else { continue };
            let step = rate(rates, next).saturating_sub(rate(rates, *layer));
            if step <= budget {
                budget -= step;
                *layer = next;
                lifted = true;
            }
        }
        if !lifted {
            return chosen;
        }
    }
}

/// What one video track asks of a subscriber's congestion controller:
/// `(minimum, desired)` bits/s. `desired` is the rate of the best layer the
/// subscriber would take with unlimited bandwidth; `minimum` is the rate of
/// the next layer up from `chosen` (or `chosen` itself once at the goal), so
/// the sender keeps enough traffic (padding if need be) to discover whether
/// that next layer fits. Without these goals the estimate never climbs back
/// above what is being sent, and a subscriber stays on a low layer forever.
///
/// ```
/// # use sfu::forward::layer::bitrate_goals;
/// let rates = [Some(50_000), Some(200_000), Some(500_000)];
/// assert_eq!(bitrate_goals(2, 0, &rates), (200_000, 500_000));
/// assert_eq!(bitrate_goals(2, 2, &rates), (500_000, 500_000));
/// assert_eq!(bitrate_goals(1, 0, &rates), (200_000, 200_000));
/// ```
pub fn bitrate_goals(max_wanted: Layer, chosen: Layer, layer_bps: &[Option<u64>]) -> (u64, u64) {
    let best = choose_layer(max_wanted, None, layer_bps);
    let rate = |l: Layer| layer_bps.get(l as usize).copied().flatten().unwrap_or(0);
    let next = (chosen.saturating_add(1)..=best)
        .find(|l| rate(*l) > 0)
        .unwrap_or(chosen.min(best));
    (rate(next), rate(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_only_at_keyframes_of_the_target() {
        let mut s = LayerSelector::new(2);
        assert_eq!(
            s.on_packet(2, false),
            LayerDecision::Drop,
            "no keyframe yet"
        );
        assert_eq!(s.on_packet(0, true), LayerDecision::Drop, "not the target");
        assert_eq!(s.on_packet(2, true), LayerDecision::SwitchAndForward);
        assert_eq!(s.on_packet(2, false), LayerDecision::Forward);
        assert_eq!(s.on_packet(1, false), LayerDecision::Drop);

        // Down-switch: keep forwarding layer 2 until layer 0 has a keyframe.
        assert!(s.set_target(0));
        assert_eq!(s.pending(), Some(0));
        assert_eq!(s.on_packet(2, false), LayerDecision::Forward);
        assert_eq!(s.on_packet(0, false), LayerDecision::Drop);
        assert_eq!(s.on_packet(0, true), LayerDecision::SwitchAndForward);
        assert_eq!(s.on_packet(2, false), LayerDecision::Drop);
        assert_eq!(s.pending(), None);
        assert_eq!(s.switches(), 2);
    }

    #[test]
    fn stopped_layer_lets_a_keyframe_restart_forwarding() {
        let mut s = LayerSelector::new(1);
        s.on_packet(1, true);
        s.layer_stopped(1);
        assert_eq!(s.current(), None);
        assert_eq!(s.on_packet(1, true), LayerDecision::SwitchAndForward);
    }

    #[test]
    fn allocation_fits_the_budget_and_never_wastes_it() {
        let rates = [Some(100_000), Some(400_000), Some(1_600_000)];
        // A lone track gets what choose_layer gives it, at every budget.
        for budget in [0, 99_999, 100_000, 400_000, 1_599_999, 1_600_000, 9_000_000] {
            assert_eq!(
                allocate_layers(Some(budget), &[(2, rates)]),
                [choose_layer(2, Some(budget), &rates)],
                "{budget}"
            );
        }
        // Below every lowest layer, everyone still gets something.
        assert_eq!(
            allocate_layers(Some(50_000), &[(2, rates), (0, rates)]),
            [0, 0]
        );
        // Thumbnails leave the budget to the large tile; it stops at what
        // it wants.
        assert_eq!(
            allocate_layers(Some(1_800_000), &[(0, rates), (2, rates), (0, rates)]),
            [0, 2, 0]
        );
        assert_eq!(
            allocate_layers(Some(9_000_000), &[(1, rates), (0, rates)]),
            [1, 0]
        );
        // Equal tiles share: one step each in turn, the second step of the
        // first only if it still fits.
        assert_eq!(
            allocate_layers(Some(1_000_000), &[(2, rates), (2, rates)]),
            [1, 1]
        );
        // One step left over: the tile that wants more takes it, wherever
        // it stands in the list.
        assert_eq!(
            allocate_layers(Some(700_000), &[(1, rates), (2, rates)]),
            [0, 1]
        );
        assert_eq!(
            allocate_layers(Some(700_000), &[(2, rates), (1, rates)]),
            [1, 0]
        );
        // A paused middle layer is stepped over.
        let no_middle = [Some(100_000), None, Some(1_600_000)];
        assert_eq!(allocate_layers(Some(1_700_000), &[(2, no_middle)]), [2]);
        // Without an estimate, each gets the best it wants.
        assert_eq!(allocate_layers(None, &[(2, rates), (1, rates)]), [2, 1]);
        // Nothing published: layer 0, as choose_layer says.
        assert_eq!(allocate_layers(Some(1), &[(2, [None; 3])]), [0]);
    }

    #[test]
    fn choose_layer_respects_inactive_layers() {
        // Only the low layer is published (e.g. the publisher is bandwidth-limited).
        assert_eq!(
            choose_layer(2, Some(5_000_000), &[Some(100_000), None, None]),
            0
        );
        // High layer paused, middle fits.
        assert_eq!(choose_layer(2, None, &[Some(1), Some(2), None]), 1);
        // Nothing published yet.
        assert_eq!(choose_layer(2, None, &[None, None, None]), 0);
        // Subscriber wants only the lowest, even though more fits.
        assert_eq!(choose_layer(0, None, &[Some(1), Some(2), Some(3)]), 0);
        // Lowest active is above max wanted: give the lowest active.
        assert_eq!(choose_layer(0, None, &[None, Some(2), Some(3)]), 1);
    }
}
