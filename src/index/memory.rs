//! The index's large buffers and the kernel's memory management.

/// Bytes of a transparent huge page on x86-64 and most 64-bit ARM kernels.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the whole 2 MiB pages inside `v`'s allocation with transparent
/// huge pages, where it offers them (`madvise` mode): one page fault, and one TLB entry, per
/// 2 MiB instead of per 4 KiB, for buffers that replay fills and probes at random. Only a
/// hint: a kernel without huge pages ignores it, and nothing else changes.
pub(crate) fn prefer_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        let bytes = v.capacity() * std::mem::size_of::<T>();
        let start = v.as_ptr() as usize;
        let first = start.next_multiple_of(HUGE_PAGE);
        let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end > first {
            // SAFETY: madvise(MADV_HUGEPAGE) changes how the kernel backs the pages of the
            // range, never their contents, and the range lies inside `v`'s allocation (whole
            // pages between its first and last byte), so no other object is affected.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Faults in, writable, every page of `v`'s elements (where the kernel can: Linux 5.14 on),
/// for a buffer about to be written all over at random. Its first access to a page may
/// otherwise be a read, which maps the shared zero page, and the first write then replaces
/// that mapping, which costs a TLB shootdown on every core running the process (the replay
/// helper's among them).
pub(crate) fn populate_for_writing<T>(v: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = v.as_mut_ptr() as usize;
        let first = start.next_multiple_of(PAGE);
        let end = (start + std::mem::size_of_val(v)) / PAGE * PAGE;
        if end > first {
            // SAFETY: MADV_POPULATE_WRITE allocates the pages of the range as a write would,
            // without writing: their contents stay as they are. The range lies inside `v`,
            // which is borrowed mutably, so nothing else observes the pages meanwhile. An
            // older kernel, or one with pages larger than 4 KiB that finds the range
            // misaligned, refuses the advice (EINVAL), which changes nothing.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    end - first,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Asks the CPU to fetch the cache lines of `value` (at most its first 128 bytes) into the
/// cache, for a read that comes later: no effect on what any code sees.
#[inline]
pub(crate) fn prefetch_read<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = (value as *const T).cast::<i8>();
        let len = std::mem::size_of::<T>();
        // SAFETY: a prefetch has no architectural effect (it cannot fault, and changes no
        // memory); both addresses lie within `value` or one line past its start, and even an
        // address outside any object would only be a hint.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(start);
            if len > 64 {
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(64));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
