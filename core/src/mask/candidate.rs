//! The masker's candidate policy: on every analysis window the detector
//! measured, could this be part of a key press that some decoder could read?
//!
//! The detector (`crate::dtmf`) stays the strict judge of which digits were
//! keyed; it hands each window's measurements — the correlations, the loose
//! measurement of the strongest pair under [`loose_params`], whether that
//! also meets the strict limits, the run it continues — to [`Candidates`],
//! which keeps its own state (tier history, chains, the background floor)
//! and answers with a verdict for the spans.
//!
//! Tiers (any one makes a candidate):
//! * **strict**: the window continues a steady strict run of at least
//!   [`STRICT_CANDIDATE_HITS`] hits;
//! * **A, a nominal key**: offsets within 2 %, twist within ±12 dB, the
//!   pair holds most of the window's energy and dominates its groups;
//! * **B, two pure tones**: anywhere within the loose limits, the fitted
//!   pair holds the window's energy (or that over the background floor) for
//!   the second window running;
//! * **H, a key held**: after a candidate window, the same pair is still
//!   there at its level and frequencies though other audio on top of it now
//!   fails the tiers' energy-share tests (see [`HOLD`]);
//! * **T, a tone outlasting the key**: right after a key ends, a quieter
//!   pair that dominates the window (see [`TAIL_DROP`]).
//! * **L, two steady lines** (`dtmf/lines.rs`), where no tier above spoke: for
//!   the last 55 ms a pair of bins whose phase turns at one steady rate and
//!   whose level holds, each far above its group's other bins, with no
//!   harmonics of its own and not two harmonics of one voice — a key under
//!   speech, babble, music or noise as loud as its tones. A chain with
//!   such a window is sure of its key (it reaches back).
//!
//! A long chain of candidate windows goes on only through confirmed keys,
//! pure tones that hold still (see [`CHAIN_FREE`]) and keys held within
//! tighter limits ([`HOLD_LONG`]; [`HOLD`]'s for a chain with [`VOTES`],
//! and a confirmed key survives a few spoilt windows, [`HOLD_CONFIRMED`]).
//! Once a chain is sure of its key, its span reaches back to where the
//! pair began, as far as the look-ahead allows ([`REACH_SHARE`]).

use crate::dtmf::lines::{LINE_WINDOWS, Line};
use crate::dtmf::{Hit, Key, Params, Profile, SubBlock, TONES, Window, best_two};

/// The loose first stage of the candidate test: tones up to ±6 % off per
/// window, ±16 dB twist, down to −80 dBm0 (a key's line echo 45 dB down,
/// at −70 dBm0, is read by multimon-ng and dtmf2num: it must be masked
/// too), at least 40 % of the window's energy, no dominance needed. The
/// tiers then ask for more.
pub(crate) fn loose_params() -> Params {
    Params {
        inst_tol_pct: 6.0,
        max_normal_twist_db: 16.0,
        max_reverse_twist_db: 16.0,
        min_level_dbm0: -80.0,
        min_fraction: 0.4,
        min_dominance_db: 0.0,
        ..Profile::Q24.params()
    }
}

/// Consecutive strict hits that make a candidate (single strict hits, and
/// pairs, are common in high voices).
const STRICT_CANDIDATE_HITS: u32 = 4;

/// A strict run stays a candidate while its phase advances are coherent to
/// within this factor of the confirmation threshold (speech harmonics glide
/// and fall out within a few windows; a key, even a mistuned one, holds).
const RUN_COHERENCE_SLACK: f32 = 0.99;

/// Candidate tier A (a nominal key): per-window offsets within 2 % (a valid
/// key 1.5 % off measures up to about 2 % in single windows), twist within
/// ±12 dB, the raw energy share ≥ 0.72 (a 10 ms tone fills at least 3/4 of
/// some window), each tone 3 dB above its group.
const NOMINAL_OFFSET: f32 = 0.02;
const NOMINAL_TWIST: f32 = 15.85; // 12 dB
const NOMINAL_FRACTION: f32 = 0.72;
const NOMINAL_DOMINANCE: f32 = 1.995; // 3 dB
/// Tier A inside a tone (the window and the two before it measured the same
/// key): the mean of this window's and the previous window's offsets within
/// 1.75 %. A tone's per-window offsets swing around its true offset (the
/// pair's mutual leakage), so a valid key (≤ 1.5 % off) averages within
/// this over two windows; voiced speech whose harmonics sit about 2 % off a
/// key swings between 1.1 % and 3 % and passed tier A on every other window,
/// chaining spans of 70 ms.
const SETTLED_OFFSET: f32 = 0.0175;
/// Candidate windows no more than this many windows apart make one chain
/// (their masked spans touch).
const CHAIN_GAP: u64 = 5;
/// A chain's windows after this many windows from its first one (30 ms:
/// its span is then 55 ms long) stay candidates only if the strict detector
/// has confirmed their key, or they are two pure tones (tier B's
/// measurement) within [`STEADY_HZ`] of the previous window's. A long tone —
/// valid, mistuned or twisted — is one or the other; voiced speech that
/// mimics a key for longer than that is neither (its harmonics glide), so
/// no span in speech grows beyond 55 ms (SPEC: 60).
const CHAIN_FREE: u64 = 6;
/// Tier B in noise: a pair of pure tones on a noisy line leaves the noise
/// unexplained (3 % of the energy at 15 dB SNR per tone, 6 % at 12 dB —
/// enough to fail the purity test, while lenient decoders still read the
/// key), so the purity is measured again with the background taken out of
/// the energy — at most this share of it, so that a floor that crept up
/// under a long tone cannot make everything look pure. Noisy speech then
/// passes more often too; past [`CHAIN_FREE`] the steadiness test holds it.
/// Measured: at 8 % (the share of 12 dB SNR), tones in white noise at +3 dB
/// per-tone SNR were 98.4 % masked, at 60 % all of them, with over-masking
/// on speech and music unchanged (0.062 %, spans ≤ 55 ms).
const FLOOR_SHARE: f32 = 0.6;
/// The background estimate rises by this factor per sub-block (≈ 3 dB per
/// 100 ms) unless a quieter sub-block pulls it down.
const FLOOR_RISE: f32 = 1.035;
/// How far a long chain's pure pair may move from one window to the next
/// (see [`CHAIN_FREE`]): a clean tone's re-measured frequency holds within
/// about 0.1 Hz, and (estimated from the phase noise of a 10 ms window)
/// about 1 Hz at 12 dB SNR; the noisy-speech chain that made a 75 ms span
/// without this test moved its upper tone 12 Hz in one window.
const STEADY_HZ: f32 = 3.0;
/// Candidate tier B (two pure tones anywhere within the loose limits): the
/// energy of the two tones fitted at their measured frequencies over the
/// energy of the window, and of one of its sub-blocks. A real pair measures
/// 1.00 ± 0.03; speech that puts two harmonics on a pair rarely does.
const PURE: std::ops::RangeInclusive<f32> = 0.96..=1.05;
/// The cheap pre-test of tier B (see `Candidates::purity`).
const FIRST_LOOK: std::ops::RangeInclusive<f32> = 0.7..=1.6;
const PURE_SUB_BLOCK: std::ops::RangeInclusive<f32> = 0.96..=1.05;
/// The lower bound of both ranges over the background: the weaker tone of
/// a twisted pair sits closer to the noise, and its frequency (so the fit)
/// is measured less well. Measured on the noisy-line test (a 3 % off,
/// +8 dB twisted key that the pure test found 23 ms in): at 0.95 dtmf2num
/// still read it; at 0.92 a 70 ms span appears in speech without keys; 0.94
/// passes both (over-masking 0.062 → 0.068 %).
const PURE_IN_NOISE_LOW: f32 = 0.94;
/// Tier B measures a window's frequencies a second way, from its own two
/// sub-blocks, at a chain's start (no candidate window within
/// [`CHAIN_GAP`]) when the pure-pair test failed and either tone's
/// power in it was below this share of this window's (a partial first
/// window: 0.5 ms or more of the tone missing). Not otherwise: speech gets a
/// second chance to look pure from it (done on every window, over-masking
/// rose 0.070 → 0.077 %, and under noise to 0.097 % with a 60 ms span).
const ONSET_RISE: f32 = 0.95;

/// 1 / |response|² of the 10 ms window at `offset` Hz from a bin (the
/// response is sin(u)/u, u = π·offset·10 ms), at most [`MAX_CORRECTION`].
fn response_correction(offset: f32) -> f32 {
    let u = std::f32::consts::PI * offset * 0.01;
    if u.abs() < 1e-3 {
        return 1.0;
    }
    let r = u.sin() / u;
    1.0 / (r * r).max(MAX_CORRECTION.recip())
}

/// The largest window-response correction of the first look (12 dB: a
/// tone half-way between the two widest-spaced column bins, 78 Hz from
/// each, reads 11.6 dB down; nearer a response null it is noise). The
/// detector's correction, capped at 3 dB, left a tone 4.5 % off reading
/// 0.65 of the window's energy, below [`FIRST_LOOK`]: never masked.
const MAX_CORRECTION: f32 = 16.0;

/// The policy's verdict on one window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verdict {
    /// The window could be part of a key press.
    pub candidate: bool,
    /// Tier B spoke, a window late: the tone was there in the previous
    /// window too, so the span reaches one sub-block further back.
    pub late: bool,
    /// The background's AC energy per sub-block (the policy's floor
    /// estimate; 0 in digital silence), for the spans' quiet test.
    pub background: f32,
    /// A chain just became sure of its key and its pair was there before
    /// the chain began (see [`REACH_SHARE`]): the span should reach back to
    /// this many sub-blocks before the window's newest (0: no reach-back;
    /// the spans bound it by the look-ahead).
    pub reach: u64,
}

/// The candidate policy's state for one stream. No allocation.
#[derive(Debug)]
pub(crate) struct Candidates {
    /// Whether the previous window passed candidate tier B's purity test.
    prev_pure: bool,
    /// The loose measurement of the previous window and of the one before
    /// it: key and signed relative offsets of both tones (see [`SETTLED_OFFSET`]).
    loose_history: [Option<(Key, [f32; 2])>; 2],
    /// The current chain of candidate windows: its latest window and how
    /// many windows before that its first was (see [`CHAIN_FREE`]).
    /// (`u32::MAX`: none yet; not an `Option`, whose tag would cost eight
    /// bytes of per-channel state. A chain of 2³² windows is 248 days.)
    chain_last: u64,
    chain_len: u32,
    /// The background: the smallest recent sub-block AC energy, rising by
    /// [`FLOOR_RISE`] per sub-block (minimum statistics).
    floor: f32,
    /// The previous window's key and tone frequencies as tier B measured
    /// them, if it did.
    prev_purity: Option<(Key, [f32; 2])>,
    /// Tier H's reference (its power also tier T's, after the hold ended).
    hold: Hold,
    /// |X|² of the eight bins of the latest windows, by window index modulo
    /// its length: as many windows as the look-ahead holds and a few (see
    /// [`REACH_SHARE`]).
    history: Box<[[f32; TONES]]>,
}

/// Reach-back: once a chain is sure of its key — the strict detector
/// confirmed it, or the chain outlived [`CHAIN_FREE`] (rare in speech
/// without keys: 0.077 % of the time is masked there at all) — its span
/// reaches back over the windows before the chain's first in which both
/// bins of its pair (|X|² as measured) were already at least this share
/// of the loudest the chain measured the tones (corrected), as far as the
/// look-ahead allows. Other audio on top of a key keeps every tier silent
/// for the key's first tens of milliseconds (under speech at +6 dB per-tone
/// SNR, onsets of 10–60 ms were left unmasked), but the pair is in its bins
/// from the first window; with a look-ahead longer than that delay (files,
/// jitter buffers), the onset is masked too.
const REACH_SHARE: f32 = 0.25;
/// A chain tier L is sure of reaches back over at least tier L's own
/// windows, and on past up to this many windows in a row below
/// [`REACH_SHARE`] (speech on top of a key dips its bins now and then, and
/// the reach stopped at the first dip: under speech at 0 dB per-tone SNR,
/// 200 ms look-ahead, a 171 ms key found 75 ms late kept those 75 ms).
/// Measured (`overlap_leaks --quick --per-key 4 --lookahead-ms 200`, 0 dB):
/// speech 90.3 → 90.7 % of the tones' time masked, the whole-tone matched
/// filter 16 → 12 %, babble 83.6 → 86.9 %; 4 dips: 91.2 %, share 1/16: no
/// change; speech more than 60 ms from a key still bit-exact at 200 ms.
const LINED_REACH_DIPS: u32 = 2;
/// The lined tail: once the chain of a pair tier L found ends (other audio
/// on top of a long key spoils tier L's and tier H's limits now and then),
/// up to [`LINED_TAIL`] windows in a row are still candidates while each
/// tone keeps [`TAIL_SHARE`] of the pair's power — in the window's bin, or
/// summed coherently at the tone's frequency over the latest
/// [`TAIL_COHERENT`] windows (speech in the bin beats with the tone and can
/// cancel it for a window or two; it does not turn at the tone's rate) —
/// and through up to [`TAIL_DIPS`] in a row that keep neither. A key's
/// tail then stays masked; after a key the tail masks at most 10 ms of
/// what follows it (the dips), after the coherent sum has decayed.
/// Measured with [`RELINE`] (`overlap_leaks --quick --per-key 4
/// --lookahead-ms 200`, 0 dB per-tone SNR): speech 90.7 → 93.4 % of the
/// tones' time masked, babble 86.9 → 88.6 % (the tail on the bin's power
/// alone: 92.3 %, on the coherent sum alone 91.2 %); the over-masking test
/// unchanged (0.077 %, 0.098 % noisy, spans ≤ 55 ms).
const LINED_TAIL: u64 = 24;
const TAIL_SHARE: f32 = 0.25;
const TAIL_COHERENT: usize = 6;
const TAIL_DIPS: u8 = 2;
/// A pair tier L lost goes on within the wider limits of a pair it holds when
/// tier L finds it again no more than this many windows (100 ms) after its
/// chain's last, and the span then bridges the gap (through the look-ahead
/// it has): under speech at 0 dB per-tone SNR, a 159 ms key whose high
/// tone speech cancelled for 20 ms, 60 ms into it, kept its last 75 ms.
const RELINE: u64 = 20;

impl Candidates {
    /// The policy for a masker that looks `lookahead_ms` ahead.
    pub fn new(lookahead_ms: u32) -> Candidates {
        // Windows hop 5 ms at every rate; two more for the sub-blocks a
        // span reaches before its window, two for frame rounding.
        let windows = (lookahead_ms / 5 + 4) as usize;
        Candidates {
            prev_pure: false,
            loose_history: [None; 2],
            chain_last: 0,
            chain_len: u32::MAX,
            floor: f32::MAX,
            prev_purity: None,
            hold: Hold::NONE,
            history: vec![[0.0; TONES]; windows].into_boxed_slice(),
        }
    }

    /// Bytes of what it keeps of the latest windows.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.history)
    }
}

/// Tier H's limits inside a chain's first [`CHAIN_FREE`] windows: each
/// tone's power (corrected for its offset) from 10 dB below to 3 dB above
/// the loudest a candidate window of the chain measured it, its per-window
/// offset within 20 Hz of the latest such window's. Other audio on top of a
/// tone moves both (speech in the bin beats with the tone), so these are
/// wide; a key that other audio hides from tiers A and B for a window or
/// two is still there by them (speech at +6 dB per-tone SNR: 95.6 % of the
/// tones' time masked without, 98.2 % with, `overlap_leaks`).
const HOLD: (f32, f32, f32) = (0.1, 1.995, 20.0);
/// Tier H's limits past [`CHAIN_FREE`] (the span is then longer than 55 ms,
/// and SPEC allows no span over 60 ms in speech without keys): 6 dB below
/// to 3 dB above, within 10 Hz. A key's tail through other audio holds
/// that; voiced speech that started a chain drifts out of it.
const HOLD_LONG: (f32, f32, f32) = (0.251, 1.995, 10.0);

/// Tier H for a key the strict detector confirmed (no speech is ever
/// confirmed, so over-masking is no concern): after a window that fails
/// [`HOLD`] or [`HOLD_LONG`], the hold goes on for up to
/// [`HOLD_CONFIRMED_MISSES`] windows in a row while each tone is 15 dB
/// below to 6 dB above its reference and within 30 Hz. Speech on top of
/// a held key beats with it: one window in a few falls out of the tight
/// limits while the key is still there, and the hold ended part-way
/// through (tails of 30–90 ms left at +6 dB per-tone SNR).
const HOLD_CONFIRMED: (f32, f32, f32) = (0.0316, 3.98, 30.0);
const HOLD_CONFIRMED_MISSES: u8 = 3;

/// A chain that has this many windows passing a tier of their own (strict
/// run, A or B; not tier H) is a key's for the hold's purposes: past
/// [`CHAIN_FREE`] its hold keeps [`HOLD`]'s wide limits instead of
/// [`HOLD_LONG`]'s. Speech on top of a key held past 30 ms moves its
/// measured frequency by more than 10 Hz now and then, and the hold ended
/// there (tails of 30–90 ms left at +6 dB per-tone SNR). Measured
/// (`overlap_leaks --quick`, the over-masking test): at 8, speech at +6 dB
/// 83.1 → 85.7 % of the tones' time masked, babble 87.0 → 89.0 %, speech
/// without keys 0.077 % masked, spans ≤ 55 ms; at 4 and 6 a 65 ms span
/// appeared in speech without keys.
const VOTES: u8 = 8;

/// Tier T: a window right after a candidate one (the chain's key held)
/// whose strongest pair, at the nominal bins, holds less than this share of
/// the key's power (the key has ended: 12 dB down), dominates both groups
/// as tier A asks and holds most of the window's energy. A key's line echo,
/// or a second key, that outlasts the key before it by 10–15 ms has only
/// one window of its own, and that window's phase advance — so its
/// offsets, so the loose measurement — is spoilt by the loud key in the
/// window before: no other tier can pass it (echoes 35 dB down, 500 ms
/// late: their last 3–14 ms were left after 7 of 64 keys, enough for a
/// matched filter over the whole echo to name it).
const TAIL_DROP: f32 = 0.063;
/// Tier T looks at the first windows after the chain's latest candidate
/// window, up to this many (the windows straddling the key's end may fail
/// every tier and tier T too — the key's last milliseconds still dominate
/// them —, the tone that outlasts it then has the next).
const TAIL_WINDOWS: u64 = 3;

/// Tier H: the key the previous window was masked for (there is a hold
/// only while every window since its reference was a candidate), held while
/// its pair stays. Small: it is per-channel state (SPEC: ≤ 1 KiB).
#[derive(Debug, Clone, Copy)]
struct Hold {
    /// The pair's bins (row, column).
    tones: [u8; 2],
    /// Whether the key is still held (once not, the reference stays for
    /// tier T).
    live: bool,
    /// The pair's corrected power and offsets (Hz) when it was masked.
    power: [f32; 2],
    hz: [f32; 2],
    /// The chain's span has reached back (see [`REACH_SHARE`]; once per chain).
    reached: bool,
    /// The strict detector confirmed this key during the hold, or tier L
    /// found it (see [`HOLD_CONFIRMED`]).
    confirmed: bool,
    /// Windows in a row that missed [`HOLD_CONFIRMED`]'s limits.
    misses: u8,
    /// Windows of the chain that passed a tier of their own (not tier H).
    votes: u8,
    /// Tier L found this pair.
    lined: bool,
    /// Windows of the lined tail since the chain's last (see [`LINED_TAIL`]).
    tail: u8,
}

impl Hold {
    /// No hold (no bin has this index; not an `Option`, whose tag would
    /// cost four bytes of per-channel state).
    const NONE: Hold = Hold {
        tones: [u8::MAX; 2],
        live: false,
        power: [0.0; 2],
        hz: [0.0; 2],
        reached: false,
        confirmed: false,
        misses: 0,
        votes: 0,
        lined: false,
        tail: 0,
    };

    /// Whether `key` is the held pair's.
    fn keys(&self, key: Key) -> bool {
        key.row() == self.tones[0] as usize && 4 + key.col() == self.tones[1] as usize
    }
}

/// Tier B's measurement of one window.
#[derive(Debug, Clone, Copy)]
struct Purity {
    /// Two pure tones.
    clean: bool,
    /// Not clean, but two pure tones over the background noise.
    in_noise: bool,
    /// The tones' frequencies, Hz (zero if the cheap first look failed and
    /// nothing was measured: never near a previous window's).
    hz: [f32; 2],
}

impl Candidates {
    /// The verdict on window `w` (see the module's tiers): the window
    /// continues a steady strict run (`strict`), or passed the loose limits
    /// (its measurement is `loose`) and then either looks like a nominal key
    /// (tier A) or is two pure tones (tier B) for the second window running.
    /// Pure: the frequencies are measured again with the pair's leakage and
    /// images computed at the first measurement (two mistuned tones'
    /// leakage otherwise swings them by ±1 % from window to window), the two
    /// tones are fitted to their bins at those frequencies, and the fitted
    /// pair — cross terms included — holds the energy of the 10 ms window
    /// and of one of its 5 ms sub-blocks (a tone fills at least one
    /// sub-block whenever it lasts 10 ms or more). Tier B and strict hits
    /// need more than one window because single ones are common in high
    /// voices; off-nominal tones are then masked from a little after their
    /// onset, still ahead of what a decoder needs to read a key.
    /// A long chain of candidate windows goes on only through confirmed
    /// keys and pure tones (see [`CHAIN_FREE`]). A window no tier passes
    /// is still a candidate while tier H holds the chain's key.
    pub fn judge(&mut self, w: &Window<'_>) -> Verdict {
        let loose = w.loose;
        let k = w.index();
        let slots = self.history.len() as u64;
        self.history[(k % slots) as usize] = *w.power();
        // A strict hit is a candidate when it continues one (single strict
        // hits are common in speech; real keys go on).
        let strict = w.continued_run().is_some_and(|hits| hits + 1 >= STRICT_CANDIDATE_HITS)
            && w.run_is_steady(RUN_COHERENCE_SLACK);
        let (verdict, mut measured, late) = self.candidate_test(w, strict);
        let previous = self.prev_purity.take();
        let first = self.chain_continued(k).unwrap_or(k);
        if first == k {
            // A new chain reaches back anew.
            self.hold.reached = false;
            self.hold.votes = 0;
        }
        let ok = verdict
            && (k - first <= CHAIN_FREE
                || w.confirmed().is_some_and(|key| loose.is_some_and(|h| h.key == key))
                || loose.is_some_and(|h| {
                    // A long chain goes on through a pure pair that holds still.
                    let p = *measured.get_or_insert_with(|| Self::purity(w, h, self.floor, false));
                    let steady = previous
                        .is_some_and(|(key, hz)| key == h.key && (0..2).all(|t| (p.hz[t] - hz[t]).abs() <= STEADY_HZ));
                    (p.clean || p.in_noise) && steady
                }));
        self.prev_purity = loose.zip(measured).map(|(h, p)| (h.key, p.hz));
        let mut bridge = None;
        let (ok, chained) = if ok {
            if let Some(h) = loose {
                self.refer(h);
            }
            self.hold.votes = self.hold.votes.saturating_add(1);
            (true, true)
        } else if let Some(key) = w.detected() {
            // The detector confirmed the key (under other audio, by its
            // lines, where no tier of the masker's own spoke): masked as
            // tier L's, whose tail and reach-back it gets.
            self.refer_detected(w, key);
            self.hold.votes = self.hold.votes.saturating_add(1);
            (true, true)
        } else if let Some(l) = self.line(w) {
            // Tier L, where no tier of the window's own spoke (on a clean
            // line they do, and their reference is the exact one; and a
            // clean key costs nothing here).
            if !self.hold.live && self.hold.lined && l.tones == self.hold.tones {
                bridge = Some(self.chain_last);
            }
            self.refer_line(&l);
            self.hold.votes = self.hold.votes.saturating_add(1);
            (true, true)
        } else if self.held(w, if k - first >= CHAIN_FREE && self.hold.votes < VOTES { HOLD_LONG } else { HOLD }) {
            // Tier H; from the chain's last free window on within the
            // tighter limits (a chain of windows held densely would
            // otherwise reach the rule's full 60 ms), unless the chain
            // has [`VOTES`].
            (true, true)
        } else if self.lined_tail(w) {
            (true, false)
        } else {
            // Tier T, for the first windows after the chain's latest.
            (k - self.chain_last <= TAIL_WINDOWS && self.outlasting(w), false)
        };
        // Held windows continue the chain: its rule bounds their spans too.
        // Tier T's do not (they would keep it going for as long as any
        // quieter pair dominates): it reaches only [`TAIL_WINDOWS`] past it.
        if ok && chained {
            self.hold.tail = 0;
            (self.chain_last, self.chain_len) = (k, (k - first).min(u64::from(u32::MAX - 1)) as u32);
        }
        let reach = if ok && chained { self.reach_back(w, first, bridge) } else { 0 };
        self.floor = (self.floor * FLOOR_RISE).min(w.ac);
        Verdict { candidate: ok, late: ok && verdict && late, background: self.floor, reach }
    }

    /// Reach-back (see [`REACH_SHARE`]) for window `w` of the chain that
    /// began at window `first`: the sub-blocks before `w`'s newest the span
    /// should reach, or 0.
    fn reach_back(&mut self, w: &Window<'_>, first: u64, bridge: Option<u64>) -> u64 {
        let k = w.index();
        let held = self.hold;
        let sure = k - first > CHAIN_FREE || held.lined || w.confirmed().is_some_and(|key| held.keys(key));
        if !sure || held.reached || !held.live {
            return 0;
        }
        self.hold.reached = true;
        let [r, c] = held.tones.map(usize::from);
        let slots = self.history.len() as u64;
        // Windows before `first` still in the history (k − slots + 1 is the oldest).
        let oldest = (k + 1).saturating_sub(slots).max(1);
        let mut earliest = first;
        // Tier L saw the pair steady over its windows: it found the chain's
        // key, or would have now (a chain that a tier of its own began, late,
        // under other audio, never asked it).
        let lined = held.lined || w.lines().find(w.bank(), None).is_some_and(|l| l.tones == held.tones);
        if lined {
            earliest = earliest.min((k + 1).saturating_sub(LINE_WINDOWS as u64).max(oldest));
        }
        if let Some(last) = bridge {
            earliest = earliest.min((last + 1).max(oldest));
        }
        let dips = if lined { LINED_REACH_DIPS } else { 0 };
        // Back over the windows that hold the pair, and over up to `dips`
        // in a row that do not.
        let (mut j, mut missed) = (earliest, 0);
        while j > oldest {
            let p = &self.history[((j - 1) % slots) as usize];
            j -= 1;
            if p[r] >= REACH_SHARE * held.power[0] && p[c] >= REACH_SHARE * held.power[1] {
                (earliest, missed) = (j, 0);
            } else if missed == dips {
                break;
            } else {
                missed += 1;
            }
        }
        // Window `earliest` (sub-blocks earliest − 1 and earliest) holds the
        // pair; the tone may begin in the sub-block before it.
        if earliest == first { 0 } else { k - earliest + 2 }
    }

    /// The first window of the chain that window `k` would continue (one
    /// with a candidate window no more than [`CHAIN_GAP`] before it).
    fn chain_continued(&self, k: u64) -> Option<u64> {
        let (last, len) = (self.chain_last, self.chain_len);
        (len != u32::MAX && k - last <= CHAIN_GAP).then(|| last - u64::from(len))
    }

    /// Tier H's reference from a candidate window's measurement `h`: its
    /// key, at the loudest a window of the chain measured it (a tone's
    /// partial first window reads low), at its latest offsets.
    fn refer(&mut self, h: &Hit) {
        // Bank indices are below 8.
        self.refer_pair([h.tones[0] as u8, h.tones[1] as u8], h.power, h.offset);
    }

    /// Tier H's reference from tier L's pair (a key it is sure of).
    fn refer_line(&mut self, l: &Line) {
        self.refer_pair(l.tones, l.power, l.hz);
        self.hold.lined = true;
        self.hold.confirmed = true;
    }

    /// Tier H's reference from the key the detector confirmed: its bins at
    /// their power in window `w`, at the offsets held if it is the pair held.
    fn refer_detected(&mut self, w: &Window<'_>, key: Key) {
        let tones = [key.row() as u8, 4 + key.col() as u8];
        let p = w.power();
        let hz = if self.hold.tones == tones { self.hold.hz } else { [0.0; 2] };
        self.refer_pair(tones, [p[tones[0] as usize], p[tones[1] as usize]], hz);
        self.hold.lined = true;
        self.hold.confirmed = true;
    }

    /// Tier H's reference: the pair of bins `tones` at `power` and offsets
    /// `hz` — the loudest the chain measured it, at its latest offsets — or
    /// a new hold if the pair is not the one held.
    fn refer_pair(&mut self, tones: [u8; 2], power: [f32; 2], hz: [f32; 2]) {
        let held = &mut self.hold;
        if held.live && held.tones == tones {
            for i in 0..2 {
                held.power[i] = held.power[i].max(power[i]);
            }
            held.hz = hz;
        } else {
            *held = Hold { tones, live: true, power, hz, ..Hold::NONE };
        }
    }

    /// Tier H: whether the pair of the key just masked is still there, at
    /// its level and frequencies, though other audio now fails the tiers'
    /// energy-share tests; ends the hold when it is not.
    fn held(&mut self, w: &Window<'_>, limits: (f32, f32, f32)) -> bool {
        let held = self.hold;
        if !held.live {
            return false;
        }
        let bank = w.bank();
        let [r, c] = held.tones.map(usize::from);
        let (xr, xc) = bank.unmix(w.x, w.mean, r, c);
        let (pw, pm) = w.prev_window();
        let (yr, yc) = bank.unmix(pw, pm, r, c);
        let off = [bank.offset_hz(xr.mul_conj(yr), r), bank.offset_hz(xc.mul_conj(yc), c)];
        let p = [xr.norm_sqr() * bank.gain_correction(off[0]), xc.norm_sqr() * bank.gain_correction(off[1])];
        let within = |(below, above, hz): (f32, f32, f32)| {
            (0..2).all(|i| {
                p[i] >= below * held.power[i] && p[i] <= above * held.power[i] && (off[i] - held.hz[i]).abs() <= hz
            })
        };
        let confirmed = held.confirmed || w.confirmed().is_some_and(|key| held.keys(key));
        self.hold.confirmed = confirmed;
        if within(limits) {
            self.hold.misses = 0;
            return true;
        }
        if confirmed && held.misses < HOLD_CONFIRMED_MISSES && within(HOLD_CONFIRMED) {
            self.hold.misses += 1;
            return true;
        }
        // The hold ends; the reference stays for tier T.
        self.hold.live = false;
        false
    }

    /// Tier L on window `w`: the pair it holds goes on within its wider
    /// limits, and so does a lined pair lost no more than [`RELINE`]
    /// windows ago; else a pair found anew.
    fn line(&self, w: &Window<'_>) -> Option<Line> {
        let held = self.hold;
        let (lines, bank) = (w.lines(), w.bank());
        if held.lined && held.live {
            return lines.find(bank, Some(held.tones));
        }
        let relined = held.lined && w.index() - self.chain_last <= RELINE;
        relined.then(|| lines.find(bank, Some(held.tones))).flatten().or_else(|| lines.find(bank, None))
    }

    /// The lined tail (see [`LINED_TAIL`]): window `w` follows a chain tier
    /// L found, or its tail, and still holds the pair's bins.
    fn lined_tail(&mut self, w: &Window<'_>) -> bool {
        let held = self.hold;
        if !held.lined || u64::from(held.tail) >= LINED_TAIL || w.index() != self.chain_last + u64::from(held.tail) + 1
        {
            return false;
        }
        let misses = if held.tail == 0 { 0 } else { held.misses };
        let [r, c] = held.tones.map(usize::from);
        let (lines, p) = (w.lines(), w.power());
        let holds = (0..2).all(|i| {
            let t = [r, c][i];
            let floor = TAIL_SHARE * held.power[i];
            p[t] >= floor || lines.coherent_power(w.bank(), t, held.hz[i], TAIL_COHERENT) >= floor
        });
        if !holds && misses >= TAIL_DIPS {
            return false;
        }
        self.hold.misses = if holds { 0 } else { misses + 1 };
        self.hold.tail += 1;
        true
    }

    /// Tier T (see [`TAIL_DROP`]): after a chain's window (the caller
    /// checks how recent), another pair, far quieter than the chain's key,
    /// that dominates this window. (The key's own last, partial window is
    /// the spans' business: they end a sub-block after the last candidate
    /// window unless it is quiet.)
    fn outlasting(&self, w: &Window<'_>) -> bool {
        let key_power = self.hold.power[0] + self.hold.power[1];
        let p = w.power();
        let (r, r2) = best_two(&p[..4]);
        let (c, c2) = best_two(&p[4..]);
        let (pr, pc) = (p[r], p[4 + c]);
        let (b, cur) = (w.prev_block(), w.cur);
        let n = w.bank().len as f32;
        let sum = b.sum + cur.sum;
        let energy = b.energy + cur.energy - sum * sum / (2.0 * n);
        [r as u8, 4 + c as u8] != self.hold.tones
            && pr + pc > 0.0
            && pr + pc < TAIL_DROP * key_power
            && pr >= NOMINAL_DOMINANCE * r2
            && pc >= NOMINAL_DOMINANCE * c2
            && (NOMINAL_TWIST.recip()..=NOMINAL_TWIST).contains(&(pc / pr))
            && pr + pc >= NOMINAL_FRACTION * n * energy
    }

    /// The window's own verdict (tier A, strict run or tier B), and tier B's
    /// measurement if it was made.
    fn candidate_test(&mut self, w: &Window<'_>, strict: bool) -> (bool, Option<Purity>, bool) {
        let loose = w.loose;
        let freq = &w.bank().freq;
        let was_pure = std::mem::replace(&mut self.prev_pure, false);
        let history = self.loose_history;
        let rel = loose.map(|h| [h.offset[0] / freq[h.tones[0]], h.offset[1] / freq[h.tones[1]]]);
        self.loose_history = [loose.zip(rel).map(|(h, o)| (h.key, o)), history[0]];
        let (Some(h), Some(rel)) = (loose, rel) else { return (strict, None, false) };
        let twist = h.bins[1] / h.bins[0];
        // Inside a tone, the offsets averaged over this window and the last.
        let settled = match history {
            [Some((k1, p)), Some((k2, _))] if k1 == h.key && k2 == h.key => {
                (0..2).all(|t| (0.5 * (rel[t] + p[t])).abs() <= SETTLED_OFFSET)
            }
            _ => true,
        };
        let tier_a = rel[0].abs() <= NOMINAL_OFFSET
            && rel[1].abs() <= NOMINAL_OFFSET
            && settled
            && (NOMINAL_TWIST.recip()..=NOMINAL_TWIST).contains(&twist)
            && h.raw_fraction >= NOMINAL_FRACTION
            && h.dominance() >= NOMINAL_DOMINANCE;
        if tier_a || strict {
            self.prev_pure = true;
            return (true, None, false);
        }
        // At a chain's start only, the frequencies may be measured a second
        // way (see [`ONSET_RISE`]).
        let starts = self.chain_continued(w.index()).is_none();
        let p = Self::purity(w, h, self.floor, starts);
        let pure = p.clean || p.in_noise;
        self.prev_pure = pure;
        // Tier B speaks a window late: the tone was already there in the
        // previous window, whose span reaches one sub-block further back.
        (pure && was_pure, Some(p), true)
    }

    /// Tier B's measurement of the window (loose measurement `h`).
    fn purity(w: &Window<'_>, h: &Hit, floor: f32, onset: bool) -> Purity {
        let (bank, x, cur) = (w.bank(), w.x, w.cur);
        let (prev_window, prev_window_mean) = w.prev_window();
        let prev_block = w.prev_block();
        let [r, c] = h.tones;
        let out = Purity { clean: false, in_noise: false, hz: [0.0; 2] };
        // A cheap first look: the share with the nominal-frequency unmixing
        // and the window response at the first offsets. Two mistuned tones
        // read 0.75–1.35 here; a tone's partial first or last window, or
        // most speech, much less. Only then the exact measurement (a few
        // dozen sines). The response is the exact one, not the detector's
        // correction (capped at 3 dB): a tone 4.5 % off, between two bins,
        // is 7 dB down in its bin (it read 0.65 and was never masked).
        let first_look = (h.bins[0] * response_correction(h.offset[0]) + h.bins[1] * response_correction(h.offset[1]))
            / (bank.len as f32 * h.energy);
        if !FIRST_LOOK.contains(&first_look) {
            return out;
        }
        // Measure the offsets again with the leakage computed at the
        // frequencies first measured (two mistuned tones' leakage otherwise
        // swings them by up to ±1 % from window to window).
        let window_len = 2 * bank.len;
        let first = [bank.freq[r] + h.offset[0], bank.freq[c] + h.offset[1]];
        let mean = w.mean;
        let k = bank.pair_kernels(window_len, r, c, first, false);
        let (xr, xc) = k.fit(x, mean).own;
        let (yr, yc) = k.fit(prev_window, prev_window_mean).own;
        let offset = [bank.offset_hz(xr.mul_conj(yr), r), bank.offset_hz(xc.mul_conj(yc), c)];
        let n = bank.len as f32;
        let sub = |b: &SubBlock| {
            let mean = b.sum / n;
            (mean, b.energy - b.sum * mean)
        };
        let ((mean_prev, e_prev), (mean_cur, e_cur)) = (sub(prev_block), sub(cur));
        // The two tones' share of the energy — the pair fitted at `hz`,
        // cross terms included — of the window and of each sub-block; again
        // with the background taken out (see [`FLOOR_SHARE`]).
        let judge = |hz: [f32; 2]| {
            let fit = bank.pair_kernels(window_len, r, c, hz, true).fit(x, mean).energy;
            let k = bank.pair_kernels(bank.len, r, c, hz, true);
            let (fit_prev, fit_cur) = (k.fit(&prev_block.y, mean_prev).energy, k.fit(&cur.y, mean_cur).energy);
            // `floor` is per sub-block; a window holds two.
            let pure = |floor: f32, low: f32| {
                let share = |fit: f32, e: f32, floor: f32| fit / (e - floor.min(FLOOR_SHARE * e)).max(1.0);
                let within = |r: &std::ops::RangeInclusive<f32>, v: f32| v >= r.start().min(low) && v <= *r.end();
                within(&PURE, share(fit, h.energy, 2.0 * floor))
                    && (within(&PURE_SUB_BLOCK, share(fit_prev, e_prev, floor))
                        || within(&PURE_SUB_BLOCK, share(fit_cur, e_cur, floor)))
            };
            let clean = pure(0.0, 1.0);
            Purity { clean, in_noise: !clean && pure(floor, PURE_IN_NOISE_LOW), hz }
        };
        let out = judge([bank.freq[r] + offset[0], bank.freq[c] + offset[1]]);
        let rose = yr.norm_sqr() < ONSET_RISE * xr.norm_sqr() || yc.norm_sqr() < ONSET_RISE * xc.norm_sqr();
        if out.clean || out.in_noise || !rose || !onset {
            return out;
        }
        // The window after a tone's partial first one (a tone rose since
        // the previous window, see [`ONSET_RISE`]): that partial
        // window's phase is off by the offset times half the missing part
        // (up to ≈ 25 Hz for a tone 3.5 % off), and so is the frequency
        // measured from it. Measured again from this window's two
        // sub-blocks (a hop of the same length), the tone is found a window
        // earlier and masked from its onset.
        let k = bank.pair_kernels(bank.len, r, c, first, false);
        let ((ar, ac), (br, bc)) = (k.fit(&prev_block.y, mean_prev).own, k.fit(&cur.y, mean_cur).own);
        let offset = [bank.offset_hz(br.mul_conj(ar), r), bank.offset_hz(bc.mul_conj(ac), c)];
        let again = judge([bank.freq[r] + offset[0], bank.freq[c] + offset[1]]);
        if again.clean || again.in_noise { again } else { out }
    }
}
