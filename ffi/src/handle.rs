//! C handles: a Rust value behind an opaque C type's pointer. One trait per
//! ownership — [`BoxHandle`] (owned: `cardveil_call`) and [`ArcHandle`]
//! (shared: `cardveil_engine`) — so every conversion between the C pointer
//! and the Rust value is written once, here, instead of as casts at each
//! entry point.

use std::sync::Arc;

/// An opaque C type whose pointers own one `Box<Self::Rust>`.
pub(crate) trait BoxHandle: Sized {
    /// The value behind the handle.
    type Rust;

    /// Gives up `value` to the C side.
    fn into_raw(value: Box<Self::Rust>) -> *mut Self {
        Box::into_raw(value).cast()
    }

    /// The value behind `handle`, or `None` for NULL.
    ///
    /// # Safety
    /// `handle` is NULL or came from [`BoxHandle::into_raw`] and is not
    /// freed while the reference lives.
    unsafe fn get<'a>(handle: *const Self) -> Option<&'a Self::Rust> {
        // SAFETY: the caller guarantees NULL or a live pointer from `into_raw`.
        unsafe { handle.cast::<Self::Rust>().as_ref() }
    }

    /// Takes the value back (to drop it), or `None` for NULL.
    ///
    /// # Safety
    /// `handle` is NULL or came from [`BoxHandle::into_raw`], and is taken
    /// back once.
    unsafe fn take(handle: *mut Self) -> Option<Box<Self::Rust>> {
        // SAFETY: the caller guarantees a pointer from `into_raw`, taken once.
        (!handle.is_null()).then(|| unsafe { Box::from_raw(handle.cast::<Self::Rust>()) })
    }
}

/// An opaque C type whose pointers each hold one reference of an
/// `Arc<Self::Rust>`.
pub(crate) trait ArcHandle: Sized {
    /// The value behind the handle.
    type Rust;

    /// Gives one reference to the C side.
    fn into_raw(value: Arc<Self::Rust>) -> *mut Self {
        Arc::into_raw(value).cast_mut().cast()
    }

    /// A new reference to the value behind `handle` (the C side keeps its
    /// own), or `None` for NULL.
    ///
    /// # Safety
    /// `handle` is NULL or a pointer from [`ArcHandle::into_raw`] whose
    /// reference has not been released.
    unsafe fn clone_arc(handle: *const Self) -> Option<Arc<Self::Rust>> {
        let p = handle.cast::<Self::Rust>();
        if p.is_null() {
            return None;
        }
        // SAFETY: the caller guarantees a live pointer from `Arc::into_raw`;
        // the count is raised before a second `Arc` is made from it.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    /// Releases the C side's reference (NULL: nothing).
    ///
    /// # Safety
    /// `handle` is NULL or a pointer from [`ArcHandle::into_raw`] whose
    /// reference is released once.
    unsafe fn release(handle: *const Self) {
        let p = handle.cast::<Self::Rust>();
        if !p.is_null() {
            // SAFETY: the caller guarantees a pointer from `Arc::into_raw`,
            // released once.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Owned;
    impl BoxHandle for Owned {
        type Rust = Vec<u8>;
    }
    struct Shared;
    impl ArcHandle for Shared {
        type Rust = String;
    }

    #[test]
    fn box_handles_round_trip_and_null_is_none() {
        let h = Owned::into_raw(Box::new(vec![1, 2, 3]));
        // SAFETY: from into_raw, not yet taken.
        assert_eq!(unsafe { Owned::get(h) }.map(Vec::len), Some(3));
        // SAFETY: from into_raw, taken once.
        assert_eq!(unsafe { Owned::take(h) }.as_deref(), Some(&vec![1, 2, 3]));
        // SAFETY: NULL is allowed.
        assert!(unsafe { Owned::get(std::ptr::null()) }.is_none());
        // SAFETY: NULL is allowed.
        assert!(unsafe { Owned::take(std::ptr::null_mut()) }.is_none());
    }

    #[test]
    fn arc_handles_count_references() {
        let value = Arc::new(String::from("engine"));
        let h = Shared::into_raw(Arc::clone(&value));
        assert_eq!(Arc::strong_count(&value), 2);
        // SAFETY: from into_raw, not released.
        let extra = unsafe { Shared::clone_arc(h) }.expect("not NULL");
        assert_eq!(Arc::strong_count(&value), 3);
        drop(extra);
        // SAFETY: from into_raw, released once.
        unsafe { Shared::release(h) };
        assert_eq!(Arc::strong_count(&value), 1);
        // SAFETY: NULL is allowed.
        assert!(unsafe { Shared::clone_arc(std::ptr::null()) }.is_none());
        // SAFETY: NULL is allowed.
        unsafe { Shared::release(std::ptr::null()) };
    }
}
