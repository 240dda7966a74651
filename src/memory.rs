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
