//! Masked spans: turns the candidate verdicts of the analysis windows into
//! stream ranges to mask, and answers "is this position masked?" for the
//! release side.
//!
//! Window `k` covers sub-blocks `k−1` and `k` and ends at `e = (k+1)·len`.
//! A tone that starts in sub-block `b` makes a candidate of window `b+2` at
//! the latest (both its sub-blocks are tone; windows `b` and `b+1` may fail
//! on a partial fill), so its first sample is in sub-blocks `k−2 … k`.
//! Which of those it starts in is read from their energies: the span opens
//! at the earliest of them from which no sub-block up to `k` is *quiet* —
//! below 1/256 of the window's louder sub-block and within
//! [`QUIET_OVER_BACKGROUND`] times the background —, minus a guard of 2 ms
//! (SPEC's margin) plus 1/8 sub-block (a tone filling only a few samples of
//! its first or last sub-block may not count in its energy). Symmetrically a
//! tone ends at most one sub-block after its last candidate window: the
//! span closes at `e + len + guard`, or at
//! `e + guard` once that next sub-block turns out quiet (at `e − len + guard`
//! if the window's own second sub-block is quiet). Tying the bounds
//! to the energy rather than to which window first passed makes them the
//! same for every key with the same timing. Candidate windows whose spans
//! touch merge into one span.

use super::candidate::Verdict;
use super::{MaskedSpan, MaskerEvent};

/// Spans are at least `back + tail` (24 ms) long and separate ones do not
/// touch, so a stretch of `window` ms holds at most `window / 24 + 2`; when
/// the queue is full anyway (e.g. gap spans from heavy packet loss) the
/// newest span grows instead: it masks more, never less.
const MIN_SPAN_MS: u32 = 24;

#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u64,
    end: u64,
    /// Candidate spans are reported once final; gap spans (audio the
    /// two-phase analysis never saw) are not reported.
    candidate: bool,
    reported: bool,
}

#[derive(Debug)]
pub(crate) struct Spans {
    /// Spans in order of creation (so of start, for candidate spans): the
    /// first `len` are in use. Few enough that evicting shifts them down.
    items: Box<[Span]>,
    len: usize,
    guard: u64,
    block: u64,
    /// AC energy of the last few sub-blocks, by sub-block count mod 4, and
    /// the count of the newest (starting at 4 so that k − 3 never underflows).
    energy: [f32; 4],
    newest_block: u64,
    /// After a candidate window: its end and reference energy, to pull the
    /// span's end in if the next sub-block is quiet.
    /// (A zero reference energy: none; no sub-block is below it.)
    pending_end: (u64, f32),
}

/// A sub-block belongs to a tone's span if it holds at least this share of
/// the candidate window's louder sub-block, or more than
/// [`QUIET_OVER_BACKGROUND`] times the background.
const ONSET_SHARE: f32 = 1.0 / 256.0;
/// A sub-block next to a tone's candidate windows is quiet — the span
/// stops before it, at either end — only if it holds less than
/// [`ONSET_SHARE`] of the window's louder sub-block and no more than this
/// many times the background's energy: a quieter tone that starts or
/// outlasts the key by less than a window (a line echo 20–50 dB down on a
/// silent line) has no window of its own to be found in. Near the
/// background, every key's span starts and ends the same way.
const QUIET_OVER_BACKGROUND: f32 = 4.0;

impl Spans {
    /// Spans for sub-blocks of `block` samples at `sample_rate`, enough for
    /// `window_ms` of stream (the delay line, or the two-phase history).
    pub fn new(block: usize, sample_rate: u32, window_ms: u32) -> Spans {
        let block = block as u64;
        // 2 ms, plus 1/8 sub-block for a tone's last (or first) few samples
        // that are too weak to count in their sub-block's energy.
        let guard = (2 * sample_rate / 1000) as u64 + block / 8;
        let capacity = (window_ms / MIN_SPAN_MS + 2) as usize;
        Spans {
            items: vec![Span::default(); capacity].into_boxed_slice(),
            len: 0,
            guard,
            block,
            energy: [0.0; 4],
            newest_block: 4,
            pending_end: (0, 0.0),
        }
    }

    /// Bytes of span storage.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.items)
    }

    fn live(&self) -> &[Span] {
        &self.items[..self.len]
    }

    fn newest_mut(&mut self) -> Option<&mut Span> {
        self.items[..self.len].last_mut()
    }

    fn push(&mut self, span: Span) {
        if self.len == self.items.len() {
            // Full: the newest span grows to cover the new one.
            let newest = self.newest_mut().expect("full queue has a newest span");
            newest.end = newest.end.max(span.end);
            newest.start = newest.start.min(span.start);
            return;
        }
        self.items[self.len] = span;
        self.len += 1;
    }

    /// The verdict on the window ending at `end`, whose newest sub-block
    /// has AC energy `energy`. `floor` is the first position that can still
    /// be masked (earlier ones are released).
    pub fn window<F: FnMut(MaskerEvent)>(
        &mut self,
        end: u64,
        verdict: Verdict,
        late_floor: u64,
        energy: f32,
        floor: u64,
        on_event: &mut F,
    ) {
        let Verdict { candidate, late, background, reach } = verdict;
        let quiet = |e: f32, reference: f32| e < ONSET_SHARE * reference && e <= QUIET_OVER_BACKGROUND * background;
        // Sub-blocks are counted, not derived from `end`: stream positions
        // need not be multiples of the sub-block length.
        self.newest_block += 1;
        let k = self.newest_block;
        self.energy[(k % 4) as usize] = energy;
        let block_energy = |s: &Spans, j: u64| s.energy[(j % 4) as usize];
        let guard = self.guard;
        let (at, reference) = std::mem::take(&mut self.pending_end);
        if at + self.block == end
            && quiet(energy, reference)
            && let Some(s) = self.newest_mut()
            && s.end == end + guard
        {
            // The sub-block after the last candidate window is quiet.
            s.end = at + guard;
        }
        if candidate {
            let reference = block_energy(self, k).max(block_energy(self, k - 1));
            // How many of the two sub-blocks before the window's newest
            // (three for a verdict made a window late) are loud enough,
            // going back without a gap.
            let most = if late { 3 } else { 2 };
            let mut back = 0;
            while back < most && !quiet(block_energy(self, k - 1 - back), reference) {
                back += 1;
            }
            let mut start = end.saturating_sub((back + 1) * self.block + self.guard);
            if back == 3 {
                // The extra sub-block of a late verdict: no further back than
                // the look-ahead allows whatever the frame sizes (`late_floor`).
                start = start.max(late_floor).min(end.saturating_sub(3 * self.block + self.guard));
            }
            if reach > 0 {
                // A sure chain's reach-back, within the look-ahead like a
                // late verdict's, and from the end of any span already
                // reported (that stays as it was reported; the union is masked).
                let reported = self.live().iter().filter(|s| s.reported && s.candidate).map(|s| s.end).max();
                let back = end.saturating_sub((reach + 1) * self.block + self.guard).max(late_floor);
                start = start.min(back.max(reported.unwrap_or(0)));
            }
            let start = start.max(floor);
            let stop = if quiet(energy, reference) {
                // The tone is in the window's first sub-block only.
                end - self.block + self.guard
            } else {
                // It may go on into the next sub-block: see there.
                self.pending_end = (end, reference);
                end + self.block + self.guard
            };
            match self.newest_mut() {
                // (A reported span is never grown: a reach-back begins at
                // its end at the earliest, and then starts a span of its own.)
                Some(s) if s.candidate && !s.reported && start <= s.end => {
                    s.end = s.end.max(stop);
                    s.start = s.start.min(start);
                }
                _ => self.push(Span { start, end: stop, candidate: true, reported: false }),
            }
        }
        // The next window's span could start three sub-blocks and a guard
        // before its newest sub-block: a span ending before that is final.
        let next_start = end.saturating_sub(3 * self.block + self.guard);
        self.report_final(next_start, on_event);
    }

    /// Reports every candidate span that ends before `limit` and was not yet reported.
    pub fn report_final<F: FnMut(MaskerEvent)>(&mut self, limit: u64, on_event: &mut F) {
        for s in &mut self.items[..self.len] {
            if s.candidate && !s.reported && s.end < limit {
                s.reported = true;
                on_event(MaskerEvent::Masked(MaskedSpan { start: s.start, end: s.end }));
            }
        }
    }

    /// Marks `[start, end)` masked without reporting it (audio not analysed).
    pub fn gap(&mut self, start: u64, end: u64) {
        if start < end {
            self.push(Span { start, end, candidate: false, reported: true });
        }
    }

    /// Forgets spans that end at or before `pos`; returns the largest end
    /// forgotten (0 if none). Unreported spans are kept.
    pub fn evict(&mut self, pos: u64) -> u64 {
        let gone = self.live().iter().take_while(|s| s.end <= pos && s.reported).count();
        let forgot = self.live()[..gone].iter().map(|s| s.end).max().unwrap_or(0);
        if gone > 0 {
            self.items.copy_within(gone..self.len, 0);
            self.len -= gone;
        }
        forgot
    }

    /// From position `pos`: whether it is masked, and the first position
    /// (≤ `limit`) where that changes.
    pub fn segment(&self, pos: u64, limit: u64) -> (bool, u64) {
        // Furthest end reachable from `pos` through overlapping spans.
        let mut until = pos;
        loop {
            let mut grown = until;
            for s in self.live() {
                if s.start <= until && until < s.end {
                    grown = grown.max(s.end);
                }
            }
            if grown == until {
                break;
            }
            until = grown;
        }
        if until > pos {
            return (true, until.min(limit));
        }
        let next = self.live().iter().map(|s| s.start).filter(|&s| s > pos).min().unwrap_or(limit);
        (false, next.min(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(spans: &Spans, from: u64, to: u64) -> Vec<(bool, u64, u64)> {
        let mut out = Vec::new();
        let mut p = from;
        while p < to {
            let (m, next) = spans.segment(p, to);
            assert!(next > p);
            out.push((m, p, next));
            p = next;
        }
        out
    }

    /// Feeds windows ending at 40·(k+1) for sub-blocks with `energies`;
    /// `candidates` lists the candidate windows.
    fn feed(s: &mut Spans, energies: &[f32], candidates: &[u64], floor: u64) -> Vec<MaskerEvent> {
        let mut events = Vec::new();
        for (k, &e) in energies.iter().enumerate() {
            let k = k as u64;
            s.window(
                40 * (k + 1),
                Verdict { candidate: candidates.contains(&k), late: false, background: 1.0, reach: 0 },
                0,
                e,
                floor,
                &mut |ev| events.push(ev),
            );
        }
        events
    }

    #[test]
    fn a_span_starts_where_the_energy_rises_and_ends_where_it_falls() {
        // Quiet, then a tone from inside sub-block 10 to inside sub-block 12.
        let mut energies = vec![1.0f32; 20];
        energies[10] = 300.0;
        energies[11] = 1000.0;
        energies[12] = 500.0;
        // Whichever window is the candidate, the span is the same: from
        // sub-block 10's start − 21 to sub-block 12's end + 21 (guard: 16 + 5).
        for candidates in [&[11u64][..], &[12], &[11, 12], &[12, 13]] {
            let mut s = Spans::new(40, 8000, 500);
            let events = feed(&mut s, &energies, candidates, 0);
            assert_eq!(
                collect(&s, 0, 800),
                vec![(false, 0, 379), (true, 379, 541), (false, 541, 800)],
                "{candidates:?}"
            );
            assert_eq!(events, vec![MaskerEvent::Masked(MaskedSpan { start: 379, end: 541 })]);
        }
    }

    #[test]
    fn a_quieter_tone_around_the_key_keeps_the_span_open_unless_it_is_the_background() {
        // A key in sub-blocks 10–12, a tone 27 dB quieter in 8–9 and 13–14.
        let mut energies = [1.0f32; 20];
        for (j, e) in [(8, 2.0), (9, 2.0), (10, 1000.0), (11, 1000.0), (12, 1000.0), (13, 2.0), (14, 2.0)] {
            energies[j] = e;
        }
        let span = |background: f32| {
            let mut s = Spans::new(40, 8000, 500);
            for (k, &e) in energies.iter().enumerate() {
                let k = k as u64;
                let verdict = Verdict { candidate: k == 11 || k == 12, late: false, background, reach: 0 };
                s.window(40 * (k + 1), verdict, 0, e, 0, &mut |_| {});
            }
            collect(&s, 0, 800)[1]
        };
        // That quieter tone is the background: the span is the key's.
        assert_eq!(span(1.0), (true, 400 - 21, 13 * 40 + 21));
        // It is not (a line echo on a silent line): the span reaches as far
        // as it may, back two sub-blocks and on one.
        assert_eq!(span(0.0), (true, 9 * 40 - 21, 14 * 40 + 21));
    }

    #[test]
    fn a_late_verdict_reaches_one_sub_block_further_back_within_the_lookahead() {
        let energies = [1000.0f32; 20];
        let window = |late: bool, late_floor: u64| {
            let mut s = Spans::new(40, 8000, 500);
            for (k, &e) in energies.iter().enumerate() {
                let k = k as u64;
                s.window(
                    40 * (k + 1),
                    Verdict { candidate: k == 10, late, background: 1.0, reach: 0 },
                    late_floor,
                    e,
                    0,
                    &mut |_| {},
                );
            }
            collect(&s, 0, 800)[1]
        };
        // Window 10 ends at 440: back two sub-blocks (3 in all) and a guard,
        // or three (4 in all) for a late verdict.
        assert_eq!(window(false, 0), (true, 440 - 3 * 40 - 21, 12 * 40 + 21));
        assert_eq!(window(true, 0), (true, 440 - 4 * 40 - 21, 12 * 40 + 21));
        // The look-ahead bounds the extra reach, never the usual one.
        assert_eq!(window(true, 440 - 160), (true, 440 - 160, 12 * 40 + 21));
        assert_eq!(window(true, 440 - 100), (true, 440 - 3 * 40 - 21, 12 * 40 + 21));
    }

    #[test]
    fn a_sure_chains_reach_back_opens_the_span_earlier_within_the_lookahead() {
        let energies = [1000.0f32; 30];
        // Candidate windows 10–20; window 20 asks to reach 16 sub-blocks back.
        let span = |reach: u64, late_floor: u64| {
            let mut s = Spans::new(40, 8000, 500);
            let mut events = Vec::new();
            for (k, &e) in energies.iter().enumerate() {
                let k = k as u64;
                let verdict = Verdict {
                    candidate: (10..=20).contains(&k),
                    late: false,
                    background: 1.0,
                    reach: if k == 20 { reach } else { 0 },
                };
                s.window(40 * (k + 1), verdict, if k == 20 { late_floor } else { 0 }, e, 0, &mut |ev| events.push(ev));
            }
            (collect(&s, 0, 1200)[1], events)
        };
        // Without it: from window 10's reach (sub-block 8) to after window 20.
        let (plain, _) = span(0, 0);
        assert_eq!(plain, (true, 8 * 40 - 21, 22 * 40 + 21));
        // Window 20 ends at 840: 16 sub-blocks and the newest back, and a guard.
        let (reached, events) = span(16, 0);
        assert_eq!(reached, (true, 840 - 17 * 40 - 21, 22 * 40 + 21));
        assert_eq!(events, vec![MaskerEvent::Masked(MaskedSpan { start: 840 - 17 * 40 - 21, end: 22 * 40 + 21 })]);
        // The look-ahead bounds it.
        assert_eq!(span(16, 840 - 600).0, (true, 840 - 600, 22 * 40 + 21));
    }

    #[test]
    fn a_reach_back_into_a_reported_span_leaves_that_span_as_reported() {
        let mut energies = [1000.0f32; 40];
        // Quiet between two tones, so the first span ends and is reported.
        for e in &mut energies[14..18] {
            *e = 0.0;
        }
        let mut s = Spans::new(40, 8000, 500);
        let mut events = Vec::new();
        for (k, &e) in energies.iter().enumerate() {
            let k = k as u64;
            let verdict = Verdict {
                candidate: (10..=12).contains(&k) || (19..=25).contains(&k),
                late: false,
                background: 0.0,
                reach: if k == 25 { 20 } else { 0 },
            };
            s.window(40 * (k + 1), verdict, 0, e, 0, &mut |ev| events.push(ev));
        }
        s.report_final(u64::MAX, &mut |ev| events.push(ev));
        let spans: Vec<MaskedSpan> = events
            .iter()
            .map(|e| match e {
                MaskerEvent::Masked(m) => *m,
                MaskerEvent::Key(_) => unreachable!(),
            })
            .collect();
        // The first span as it was reported; the reach-back begins where it ends.
        assert_eq!(spans.len(), 2, "{spans:?} {:?}", collect(&s, 0, 1600));
        assert_eq!(spans[1].start, spans[0].end);
        assert!(spans[0].start < 10 * 40 && spans[1].end > 26 * 40);
        // Every position between them is masked.
        assert!((spans[0].start..spans[1].end).all(|p| s.segment(p, u64::MAX).0));
    }

    #[test]
    fn loud_surroundings_extend_the_span_to_its_limits_and_the_floor_clamps_it() {
        let energies = vec![1000.0f32; 20];
        let mut s = Spans::new(40, 8000, 500);
        feed(&mut s, &energies, &[10], 0);
        // Back two sub-blocks from window 10's newest, forward one after it.
        assert_eq!(collect(&s, 0, 800)[1], (true, 8 * 40 - 21, 12 * 40 + 21));
        let mut s = Spans::new(40, 8000, 500);
        feed(&mut s, &energies, &[10], 310);
        assert_eq!(collect(&s, 0, 800)[1], (true, 310, 12 * 40 + 21));
    }

    #[test]
    fn gaps_overlap_candidates_and_eviction_keeps_unreported_spans() {
        let mut s = Spans::new(40, 8000, 500);
        let mut ev = |_| {};
        s.gap(100, 200);
        // A candidate window ending at 400 in loud audio: 259..461.
        for k in 0..10u64 {
            s.window(
                40 * (k + 1),
                Verdict { candidate: k == 9, late: false, background: 1.0, reach: 0 },
                0,
                1000.0,
                0,
                &mut ev,
            );
        }
        s.gap(300, 500);
        assert_eq!(
            collect(&s, 0, 1000),
            vec![(false, 0, 100), (true, 100, 200), (false, 200, 259), (true, 259, 500), (false, 500, 1000)]
        );
        assert_eq!(s.evict(250), 200);
        // The candidate span is not reported yet, so it stays (and so does the gap behind it).
        assert_eq!(s.evict(10_000), 0);
        assert_eq!(collect(&s, 0, 1000)[1], (true, 259, 500));
    }

    #[test]
    fn a_full_queue_grows_the_newest_span() {
        let mut s = Spans::new(40, 8000, 500);
        let cap = s.items.len() as u64;
        assert_eq!(cap, 500 / 24 + 2);
        for i in 0..(cap + 5) {
            s.gap(1000 * i, 1000 * i + 10);
        }
        let (m, until) = s.segment(1000 * (cap - 1), u64::MAX);
        assert!(m);
        assert_eq!(until, 1000 * (cap + 4) + 10);
    }
}
