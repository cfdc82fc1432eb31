//! A branch-light `atan2` for the detector's per-window maths: pure
//! arithmetic (no libm call), accurate to 2e-6 rad, identical on every
//! platform.

use std::f32::consts::{FRAC_PI_2, FRAC_PI_6, PI};

const TAN_PI_12: f32 = 0.267_949_2;
const SQRT_3: f32 = 1.732_050_8;

/// atan(r) for r in [0, 1]: one reduction by π/6, then a Taylor series in
/// |u| ≤ tan(π/12), where the first omitted term is below 4e-8. Both
/// reductions are computed and one is selected, so the compiler need not
/// branch on the angle (a tone's phase is anywhere: branches mispredict).
#[inline]
fn atan01(r: f32) -> f32 {
    let reduced = (r * SQRT_3 - 1.0) / (r + SQRT_3);
    let far = r > TAN_PI_12;
    let base = select(far, FRAC_PI_6, 0.0);
    let u = select(far, reduced, r);
    let u2 = u * u;
    base + u * (1.0 + u2 * (-1.0 / 3.0 + u2 * (1.0 / 5.0 + u2 * (-1.0 / 7.0 + u2 * (1.0 / 9.0)))))
}

/// `if c { a } else { b }` for values already computed.
#[inline(always)]
fn select(c: bool, a: f32, b: f32) -> f32 {
    if c { a } else { b }
}

/// The angle of (x, y) in (−π, π]; 0 for the origin.
#[inline]
pub(crate) fn atan2(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    let steep = ay > ax;
    // The smaller over the larger, in [0, 1] (NaN at the origin, replaced below).
    let a0 = atan01(select(steep, ax, ay) / select(steep, ay, ax));
    let a = select(steep, FRAC_PI_2 - a0, a0);
    let a = select(x < 0.0, PI - a, a);
    let a = select(y < 0.0, -a, a);
    select(ax == 0.0 && ay == 0.0, 0.0, a)
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
        // Every finite (y, x), however large or small (only their ratio
        // matters), and the axes with both signs of zero.
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2_000_000 {
            let seed = crate::dtmf::xorshift(&mut seed);
            let (y, x) = (f32::from_bits(seed as u32), f32::from_bits((seed >> 32) as u32));
            if x.is_finite() && y.is_finite() && (x, y) != (0.0, 0.0) {
                assert!((atan2(y, x) - y.atan2(x)).abs() < 2e-6, "{y} {x}");
            }
        }
        for (y, x, a) in
            [(0.0, 1.0, 0.0), (1.0, 0.0, FRAC_PI_2), (-1.0, 0.0, -FRAC_PI_2), (-0.0, 1.0, 0.0), (3.0, 3.0, PI / 4.0)]
        {
            assert!((atan2(y, x) - a).abs() < 1e-6, "{y} {x}");
        }
        assert_eq!(atan2(-0.0, -0.0), 0.0);
    }
}
