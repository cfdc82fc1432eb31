//! The C ABI of cardveil: `libcardveil.a` and `libcardveil.so`.
//!
//! Every `extern "C"` function and raw pointer of the project lives in this
//! crate. For now it exports the version; the call, frame and capture API
//! follows the C ABI issue (see `../shared/STYLE.md`, "The C ABI").

use std::ffi::c_char;

/// The library version as a NUL-terminated, statically allocated string,
/// e.g. `"cardveil/0.1.0"`. Never NULL; the caller must not free it.
#[unsafe(no_mangle)]
pub extern "C" fn cardveil_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

static VERSION: &str = concat!("cardveil/", env!("CARGO_PKG_VERSION"), "\0");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_nul_terminated_and_names_the_crate() {
        let p = cardveil_version();
        // SAFETY: cardveil_version returns a pointer to a static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(p) };
        assert_eq!(s.to_str().unwrap(), concat!("cardveil/", env!("CARGO_PKG_VERSION")));
    }
}
