//! A fixed-size single-producer single-consumer ring: the audio thread
//! pushes events, the host's event thread pops them. No locks, no
//! allocation after `new`; a full ring drops the newest and counts it.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

pub(crate) struct Spsc<T: Copy, const N: usize> {
    slots: [UnsafeCell<MaybeUninit<T>>; N],
    /// Next slot to write (only the producer stores it).
    head: AtomicUsize,
    /// Next slot to read (only the consumer stores it).
    tail: AtomicUsize,
    dropped: AtomicU64,
}

// SAFETY: a slot is written only by the single producer while it is outside
// [tail, head) and read only by the single consumer while it is inside; the
// Release store of `head` (after writing) and its Acquire load (before
// reading) order the slot's contents, and likewise `tail` for reuse. `T` is
// Copy (no drop glue) and Send.
unsafe impl<T: Copy + Send, const N: usize> Sync for Spsc<T, N> {}

impl<T: Copy, const N: usize> Spsc<T, N> {
    pub(crate) fn new() -> Self {
        Spsc {
            slots: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Producer side only. False (and counted) if full.
    pub(crate) fn push(&self, v: T) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) == N {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // SAFETY: the slot at `head` is not in [tail, head): the consumer does
        // not read it until the Release store below publishes it.
        unsafe { (*self.slots[head % N].get()).write(v) };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer side only.
    pub(crate) fn pop(&self) -> Option<T> {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        if tail == head {
            return None;
        }
        // SAFETY: the slot at `tail` is in [tail, head): written and
        // published by the producer (Acquire above), not rewritten until the
        // Release store below frees it.
        let v = unsafe { (*self.slots[tail % N].get()).assume_init() };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(v)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_bounded_and_across_threads() {
        let r: Spsc<u32, 4> = Spsc::new();
        assert!(r.pop().is_none());
        for i in 0..4 {
            assert!(r.push(i));
        }
        assert!(!r.push(9));
        assert_eq!(r.dropped(), 1);
        assert_eq!((r.pop(), r.pop()), (Some(0), Some(1)));
        assert!(r.push(4) && r.push(5));
        assert_eq!([r.pop(), r.pop(), r.pop(), r.pop(), r.pop()], [Some(2), Some(3), Some(4), Some(5), None]);

        // Miri interprets: fewer items there, still many laps of the ring.
        const N: u64 = if cfg!(miri) { 1_000 } else { 100_000 };
        let r: std::sync::Arc<Spsc<u64, 64>> = std::sync::Arc::new(Spsc::new());
        let p = std::sync::Arc::clone(&r);
        let producer = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                if p.push(i) {
                    i += 1;
                }
            }
        });
        let mut want = 0;
        while want < N {
            if let Some(v) = r.pop() {
                assert_eq!(v, want);
                want += 1;
            }
        }
        producer.join().unwrap();
    }
}
