//! The queue from a participant's session to its signalling.
//!
//! The worker must never wait on a slow consumer, so the queue is bounded
//! and a push never blocks. But not every event may be lost:
//!
//! * a [`ParticipantEvent::Offer`] that never arrives leaves the session
//!   waiting for an answer for good, so no track is ever added to it or
//!   removed from it again;
//! * a lost `ParticipantJoined` or `ParticipantLeft` leaves presence wrong
//!   for the rest of the call, and a lost `LayersWanted` can keep a
//!   simulcast layer paused that someone now wants.
//!
//! Only snapshots that the next one replaces (active speakers, connection
//! quality) may be dropped. They go first: once the queue is three-quarters
//! full, they are dropped and counted, which keeps the last quarter for
//! the events that must arrive. If even that fills, the consumer is not
//! reading at all, and the queue says so ([`Pushed::Overflowed`]). The
//! worker then ends the session with a reason, rather than let it run on
//! in a state it can never leave.
//!
//! The very last slot is kept for that ending: only a
//! [`ParticipantEvent::Disconnected`] may take it. So a signalling replica
//! that reads again, however late, learns that the session ended and why,
//! instead of finding its stream closed without a word.

use tokio::sync::mpsc;

use super::ParticipantEvent;

/// What became of a pushed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// In the queue.
    Queued,
    /// A replaceable snapshot, dropped to keep room for events that must
    /// arrive.
    Dropped,
    /// An event that must arrive found no room, or the consumer is gone.
    Overflowed,
}

/// A bounded, never-blocking queue of one participant's events.
#[derive(Debug)]
pub(crate) struct EventQueue {
    sender: mpsc::Sender<ParticipantEvent>,
    /// Free slots at or below which replaceable snapshots are dropped.
    reserve: usize,
    /// Free slots kept for the session's final `Disconnected` (1, or 0 in
    /// a queue of one).
    last_word: usize,
}

impl EventQueue {
    /// A queue of `capacity` events (at least 1) and its receiving end.
    pub(crate) fn new(capacity: usize) -> (Self, mpsc::Receiver<ParticipantEvent>) {
        let capacity = capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        let last_word = usize::from(capacity > 1);
        let queue = EventQueue {
            sender,
            reserve: (capacity / 4).max(last_word),
            last_word,
        };
        (queue, receiver)
    }

    /// Queues `event` if the policy above lets it in.
    pub(crate) fn push(&self, event: ParticipantEvent) -> Pushed {
        let replaceable = is_replaceable(&event);
        let free = self.sender.capacity();
        if replaceable && free <= self.reserve {
            return Pushed::Dropped;
        }
        let last = matches!(event, ParticipantEvent::Disconnected { .. });
        if !last && free <= self.last_word {
            return Pushed::Overflowed;
        }
        match self.sender.try_send(event) {
            Ok(()) => Pushed::Queued,
            Err(_) if replaceable => Pushed::Dropped,
            Err(_) => Pushed::Overflowed,
        }
    }
}

/// Whether a later event of the same kind makes this one moot.
fn is_replaceable(event: &ParticipantEvent) -> bool {
    matches!(
        event,
        ParticipantEvent::ActiveSpeakers { .. } | ParticipantEvent::ConnectionQuality { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speakers() -> ParticipantEvent {
        ParticipantEvent::ActiveSpeakers {
            speakers: vec!["alice".into()],
        }
    }

    fn joined(n: usize) -> ParticipantEvent {
        ParticipantEvent::ParticipantJoined {
            participant: format!("p{n}"),
            e2ee: true,
            name: None,
        }
    }

    fn ended() -> ParticipantEvent {
        ParticipantEvent::Disconnected {
            reason: "gone".into(),
            rejoin: true,
        }
    }

    #[test]
    fn snapshots_stop_at_three_quarters_and_leave_room_for_the_rest() {
        let (queue, mut receiver) = EventQueue::new(8);
        let pushed: Vec<Pushed> = (0..10).map(|_| queue.push(speakers())).collect();
        assert_eq!(pushed[..6], [Pushed::Queued; 6]);
        assert_eq!(pushed[6..], [Pushed::Dropped; 4]);
        // The last quarter still takes events that must arrive, but for
        // its very last slot.
        assert_eq!(queue.push(joined(1)), Pushed::Queued);
        assert_eq!(queue.push(joined(2)), Pushed::Overflowed);
        // That one is the session's ending.
        assert_eq!(queue.push(ended()), Pushed::Queued);
        let mut got = Vec::new();
        while let Ok(event) = receiver.try_recv() {
            got.push(event);
        }
        assert_eq!(got.len(), 8);
        assert!(matches!(
            &got[6],
            ParticipantEvent::ParticipantJoined { participant, .. } if participant == "p1"
        ));
        assert!(matches!(&got[7], ParticipantEvent::Disconnected { .. }));
    }

    #[test]
    fn the_last_slot_is_only_for_the_ending() {
        let (queue, mut receiver) = EventQueue::new(2);
        assert_eq!(queue.push(joined(0)), Pushed::Queued);
        assert_eq!(queue.push(joined(1)), Pushed::Overflowed);
        assert_eq!(queue.push(speakers()), Pushed::Dropped);
        assert_eq!(queue.push(ended()), Pushed::Queued);
        assert!(receiver.try_recv().is_ok());
        assert!(matches!(
            receiver.try_recv(),
            Ok(ParticipantEvent::Disconnected { rejoin: true, .. })
        ));
    }

    #[test]
    fn a_reader_that_catches_up_makes_room_again() {
        let (queue, mut receiver) = EventQueue::new(4);
        for n in 0..3 {
            assert_eq!(queue.push(joined(n)), Pushed::Queued);
        }
        assert_eq!(queue.push(speakers()), Pushed::Dropped);
        assert_eq!(queue.push(joined(3)), Pushed::Overflowed);
        while receiver.try_recv().is_ok() {}
        assert_eq!(queue.push(speakers()), Pushed::Queued);
        assert_eq!(queue.push(joined(4)), Pushed::Queued);
    }

    #[test]
    fn a_gone_consumer_overflows_what_must_arrive() {
        let (queue, receiver) = EventQueue::new(4);
        drop(receiver);
        assert_eq!(queue.push(joined(0)), Pushed::Overflowed);
        assert_eq!(queue.push(speakers()), Pushed::Dropped);
    }

    #[test]
    fn a_queue_of_one_still_carries_events() {
        let (queue, mut receiver) = EventQueue::new(0);
        assert_eq!(queue.push(joined(0)), Pushed::Queued);
        assert!(receiver.try_recv().is_ok());
        // No reserve in a queue of one: a snapshot gets in when there is room.
        assert_eq!(queue.push(speakers()), Pushed::Queued);
    }
}
