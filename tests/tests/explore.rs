use cardveil_core::dtmf::Profile;
use cardveil_tests::conformance::*;

const RATE: u32 = 8000;
#[test]
fn explore() {
    for row in q24_rows(RATE, 400, 2000) {
        let c = run_cardveil(&row.case, Profile::Q24);
        let s = run_spandsp(&row.case);
        println!("{:24} cardveil {:6.2}% wrong {} {:?} | spandsp {:?}", row.name, 100.0 * c.rate(), c.wrong_keys, c.failures.first(), s.map(|s| 100.0 * s.rate()));
    }
    for (p, row) in profile_rows(RATE, 400) {
        let c = run_cardveil(&row.case, p);
        println!("{:24} cardveil {:6.2}% {:?}", row.name, 100.0 * c.rate(), c.failures.first());
    }
}
