//! Detector profiles: the acceptance limits of each standard, and the
//! decision thresholds derived from them.
//!
//! Frequency: the detector measures each tone's frequency to within about
//! 2 Hz (phase advance over the run), so it accepts up to the standard's
//! "must accept" limit plus a 4 Hz measurement margin, and rejects the wide
//! unspecified band up to "must reject" — most of the room between 1.5 % and
//! 3.5 % goes to talk-off protection. Twist: halfway between the two limits.

/// Which standard's limits the detector enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// ITU-T Q.24, AT&T column: ±1.5 % accept / ±3.5 % reject; twist −8…+4 dB
    /// accept, beyond ±10 dB reject; ≥ 40 ms accept, ≤ 23 ms reject.
    #[default]
    Q24,
    /// ETSI ES 201 235-3: ±(1.5 % + 2 Hz) accept; twist ±6 dB; < 20 ms
    /// interruptions bridged.
    Etsi,
    /// NTT: ±1.8 % accept / ±3.0 % reject; twist ±5 dB; ≤ 24 ms reject;
    /// a 30 ms pause separates digits.
    Ntt,
}

impl Profile {
    /// Parses `q24`, `etsi` or `ntt` (any case).
    pub fn from_name(name: &str) -> Option<Profile> {
        match name.to_ascii_lowercase().as_str() {
            "q24" | "itu" | "att" => Some(Profile::Q24),
            "etsi" => Some(Profile::Etsi),
            "ntt" => Some(Profile::Ntt),
            _ => None,
        }
    }

    pub(crate) fn params(self) -> Params {
        let base = Params {
            freq_tol_pct: 1.5,
            freq_tol_hz: FREQ_MARGIN_HZ,
            inst_tol_pct: 4.0,
            max_normal_twist_db: 9.0,
            max_reverse_twist_db: 7.0,
            min_level_dbm0: -38.0,
            min_fraction: 0.70,
            min_dominance_db: 3.0,
            max_level_spread_db: 6.0,
            min_coherence: 0.99,
            min_mean_fraction: 0.85,
            min_hits: 6,
            max_misses: 6,
        };
        match self {
            Profile::Q24 => base,
            Profile::Etsi => Params {
                freq_tol_hz: 2.0 + FREQ_MARGIN_HZ,
                max_normal_twist_db: 8.0,
                max_reverse_twist_db: 8.0,
                max_misses: 7,
                ..base
            },
            Profile::Ntt => Params { freq_tol_pct: 1.8, max_normal_twist_db: 7.5, max_reverse_twist_db: 7.5, ..base },
        }
    }
}

/// Measurement margin added to each profile's "must accept" frequency limit.
const FREQ_MARGIN_HZ: f32 = 4.0;

/// Decision thresholds used by the detector.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    /// Accumulated frequency estimate must be within this percentage (+ Hz).
    pub freq_tol_pct: f32,
    pub freq_tol_hz: f32,
    /// Per-window frequency estimate must be within this percentage.
    pub inst_tol_pct: f32,
    /// Largest accepted (low − high) level difference, dB.
    pub max_normal_twist_db: f32,
    /// Largest accepted (high − low) level difference, dB.
    pub max_reverse_twist_db: f32,
    /// Smallest level of each tone, dBm0.
    pub min_level_dbm0: f32,
    /// Share of the window's (AC) energy the two tones must hold.
    pub min_fraction: f32,
    /// The chosen tone must beat the rest of its group by this much.
    pub min_dominance_db: f32,
    /// Largest level change of either tone over a run's hits, dB (edge
    /// windows that the tone only partly fills are ≈ 3 dB down).
    pub max_level_spread_db: f32,
    /// Smallest |Σ a_k| / Σ |a_k| of each tone's phase advances a_k over the
    /// run (after its first pair). Measured: ≥ 0.993 for every conformance
    /// row; the speech that came closest to a key reached 0.989.
    pub min_coherence: f32,
    /// Smallest mean (offset-corrected) share of the energy in the two tones
    /// over a run's hits after its first. Measured: ≥ 0.877 for every conformance row (dial
    /// tone 10 dB under), 0.80 for a high voice whose 3rd and 7th harmonics
    /// sat on 697 and 1633 Hz.
    pub min_mean_fraction: f32,
    /// Windows (5 ms hops) of the key needed to confirm it.
    pub min_hits: u32,
    /// Consecutive windows without the key that end it.
    pub max_misses: u32,
}
