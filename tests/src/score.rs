//! Scores detections against the truth a stimulus recorded.

use cardveil_core::dtmf::KeyPress;

use crate::stimulus::Truth;

/// How a detector did on one track.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    /// Tones detected exactly once with the right key.
    pub correct: usize,
    /// Tones with no detection overlapping them.
    pub missed: usize,
    /// Tones detected as another key.
    pub wrong: usize,
    /// Tones detected more than once (split).
    pub split: usize,
    /// Detections overlapping no tone.
    pub extra: usize,
    /// Tones in the truth.
    pub tones: usize,
}

impl Score {
    /// Share of tones detected correctly.
    pub fn accept_rate(&self) -> f64 {
        self.correct as f64 / self.tones.max(1) as f64
    }
    /// Share of tones that produced any detection.
    pub fn any_rate(&self) -> f64 {
        (self.tones - self.missed) as f64 / self.tones.max(1) as f64
    }
}

/// Matches detections (`key`, `start`, `end` in samples) to truth by overlap,
/// with `slack` samples of tolerance on each side.
pub fn score(truth: &[Truth], detected: &[(char, u64, u64)], slack: u64) -> Score {
    let mut s = Score { tones: truth.len(), ..Score::default() };
    let mut used = vec![false; detected.len()];
    for t in truth {
        let mut hits = 0;
        let mut right = true;
        for (i, d) in detected.iter().enumerate() {
            if d.1 < t.end + slack && d.2 + slack > t.start {
                used[i] = true;
                hits += 1;
                right &= d.0 == t.key.as_char();
            }
        }
        match (hits, right) {
            (0, _) => s.missed += 1,
            (_, false) => s.wrong += 1,
            (1, true) => s.correct += 1,
            (_, true) => s.split += 1,
        }
    }
    s.extra = used.iter().filter(|u| !**u).count();
    s
}

/// [`score`] for cardveil's key presses.
pub fn score_presses(truth: &[Truth], presses: &[KeyPress], slack: u64) -> Score {
    let d: Vec<(char, u64, u64)> = presses.iter().map(|p| (p.key.as_char(), p.start, p.end)).collect();
    score(truth, &d, slack)
}
