//! spandsp's DTMF receiver (`dtmf_rx`), the reference detector, through a
//! minimal hand-written binding. Built only when `libspandsp-dev` is installed
//! (`cfg(spandsp)`); [`available`] says whether it is.

/// Whether spandsp was found at build time.
pub fn available() -> bool {
    cfg!(spandsp)
}

#[cfg(spandsp)]
mod imp {
    use std::ffi::{c_char, c_int, c_void};

    unsafe extern "C" {
        fn dtmf_rx_init(s: *mut c_void, callback: *const c_void, user_data: *mut c_void) -> *mut c_void;
        fn dtmf_rx_parms(s: *mut c_void, filter_dialtone: c_int, twist: c_int, reverse_twist: c_int, threshold: c_int);
        fn dtmf_rx(s: *mut c_void, amp: *const i16, samples: c_int) -> c_int;
        fn dtmf_rx_get(s: *mut c_void, digits: *mut c_char, max: c_int) -> usize;
        fn dtmf_rx_free(s: *mut c_void) -> c_int;
    }

    /// One spandsp DTMF receiver (8 kHz only).
    #[derive(Debug)]
    pub struct SpanDtmf {
        state: *mut c_void,
    }

    impl SpanDtmf {
        /// A receiver with spandsp's default parameters.
        pub fn new() -> SpanDtmf {
            // SAFETY: NULL state asks spandsp to allocate; no callback, so digits are queued.
            let state = unsafe { dtmf_rx_init(std::ptr::null_mut(), std::ptr::null(), std::ptr::null_mut()) };
            assert!(!state.is_null(), "dtmf_rx_init failed");
            SpanDtmf { state }
        }

        /// A receiver with explicit parameters (`dtmf_rx_parms`).
        pub fn with_parms(
            filter_dialtone: bool,
            twist_db: i32,
            reverse_twist_db: i32,
            threshold_dbm0: i32,
        ) -> SpanDtmf {
            let s = SpanDtmf::new();
            // SAFETY: `s.state` is a live receiver.
            unsafe { dtmf_rx_parms(s.state, filter_dialtone as c_int, twist_db, reverse_twist_db, threshold_dbm0) };
            s
        }

        /// Feeds samples; returns the digits completed during them.
        pub fn process(&mut self, samples: &[i16]) -> String {
            let mut out = String::new();
            for chunk in samples.chunks(160) {
                // SAFETY: pointer and length describe a live slice; state is live.
                unsafe { dtmf_rx(self.state, chunk.as_ptr(), chunk.len() as c_int) };
                self.drain(&mut out);
            }
            out
        }

        /// Feeds `samples` one 20 ms frame at a time, for benchmarks; returns nothing.
        #[inline]
        pub fn feed(&mut self, samples: &[i16]) {
            // SAFETY: pointer and length describe a live slice; state is live.
            unsafe { dtmf_rx(self.state, samples.as_ptr(), samples.len() as c_int) };
        }

        fn drain(&mut self, out: &mut String) {
            let mut buf = [0 as c_char; 129];
            // SAFETY: buf has room for 128 digits plus NUL; state is live.
            let n = unsafe { dtmf_rx_get(self.state, buf.as_mut_ptr(), 128) };
            out.extend(buf[..n.min(128)].iter().map(|&c| c as u8 as char));
        }
    }

    impl Default for SpanDtmf {
        fn default() -> Self {
            SpanDtmf::new()
        }
    }

    impl Drop for SpanDtmf {
        fn drop(&mut self) {
            // SAFETY: state was allocated by dtmf_rx_init and is freed once.
            unsafe { dtmf_rx_free(self.state) };
        }
    }

    /// Runs spandsp over `samples` and returns each digit with the sample
    /// position (chunk end) at which spandsp reported it.
    pub fn detect_timed(samples: &[i16], parms: Option<(bool, i32, i32, i32)>) -> Vec<(char, u64)> {
        let mut rx = match parms {
            Some((f, t, r, th)) => SpanDtmf::with_parms(f, t, r, th),
            None => SpanDtmf::new(),
        };
        let mut out = Vec::new();
        let mut pos = 0u64;
        for chunk in samples.chunks(40) {
            let d = rx.process(chunk);
            pos += chunk.len() as u64;
            out.extend(d.chars().map(|c| (c, pos)));
        }
        out
    }
}

#[cfg(spandsp)]
pub use imp::*;

/// spandsp's receiver where installed, behind an API that exists either way
/// (for benchmarks, which build without spandsp too).
#[derive(Debug)]
pub struct Reference {
    #[cfg(spandsp)]
    inner: imp::SpanDtmf,
}

impl Reference {
    /// A default-parameter receiver, or `None` if spandsp is not installed.
    pub fn new() -> Option<Reference> {
        #[cfg(spandsp)]
        {
            Some(Reference { inner: imp::SpanDtmf::new() })
        }
        #[cfg(not(spandsp))]
        {
            None
        }
    }

    /// Feeds samples (digits are discarded).
    #[inline]
    pub fn feed(&mut self, samples: &[i16]) {
        #[cfg(spandsp)]
        self.inner.feed(samples);
        #[cfg(not(spandsp))]
        let _ = samples;
    }
}
