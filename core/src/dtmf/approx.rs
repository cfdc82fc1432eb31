//! A branch-light `atan2` for the detector's per-window maths: pure
//! arithmetic (no libm call), accurate to 2e-6 rad, identical on every
//! platform.

use std::f32::consts::{FRAC_PI_2, FRAC_PI_6, PI};

const TAN_PI_12: f32 = 0.267_949_2;
const SQRT_3: f32 = 1.732_050_8;

/// atan(r) for r in [0, 1]: one reduction by π/6, then a Taylor series in
/// |u| ≤ tan(π/12), where the first omitted term is below 4e-8.
#[inline]
fn atan01(r: f32) -> f32 {
    let (base, u) = if r > TAN_PI_12 { (FRAC_PI_6, (r * SQRT_3 - 1.0) / (r + SQRT_3)) } else { (0.0, r) };
    let u2 = u * u;
    base + u * (1.0 + u2 * (-1.0 / 3.0 + u2 * (1.0 / 5.0 + u2 * (-1.0 / 7.0 + u2 * (1.0 / 9.0)))))
}

/// The angle of (x, y) in (−π, π]; 0 for the origin.
#[inline]
pub(crate) fn atan2(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    if ax == 0.0 && ay == 0.0 {
        return 0.0;
    }
    let mut a = if ay > ax { FRAC_PI_2 - atan01(ax / ay) } else { atan01(ay / ax) };
    if x < 0.0 {
        a = PI - a;
    }
    if y < 0.0 { -a } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atan2_matches_libm_everywhere() {
        let mut worst = 0f32;
        for i in 0..3600 {
            let a = (i as f32 / 3600.0) * std::f32::consts::TAU - PI;
            for r in [1e-3f32, 1.0, 1e6] {
                let (y, x) = (r * a.sin(), r * a.cos());
                worst = worst.max((atan2(y, x) - y.atan2(x)).abs());
            }
        }
        assert!(worst < 2e-6, "{worst}");
        assert_eq!(atan2(0.0, 0.0), 0.0);
        assert!((atan2(0.0, -1.0) - PI).abs() < 1e-6);
    }
}
