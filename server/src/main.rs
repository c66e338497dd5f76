//! The `osteo-edc` binary: see `osteo-edc --help`.

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    osteo_server::cli::main()
}

/// glibc's malloc serves an allocation above its mapping threshold (128 KiB
/// at first) with a mapping of its own and hands it back to the kernel when
/// freed. burn's CPU backend allocates a new buffer for every tensor (one
/// 16-channel map of two 192² views is 4.5 MB), so layer after layer was
/// faulted in and zeroed by the kernel again: a quarter of a CPU inference.
/// With the threshold at its largest (32 MiB) and the heap trimmed only
/// above 256 MiB of free space, freed buffers are reused instead
/// (docs/build.md, "The model", has the numbers). Training batches hold
/// larger maps still (one 16-channel map of a batch of 8 two-view cases is
/// 38 MB, above any threshold malloc accepts), so mappings are turned off
/// altogether (`M_MMAP_MAX` 0): every block comes from the heap, and a freed
/// one is reused rather than unmapped, which had cost a flush of every
/// core's page tables per buffer (the convolutions' backward pass took
/// three times as long). The heap is still given back above 256 MiB of
/// free space at its top. mimalloc and jemalloc were
/// measured as well: mimalloc as fast at inference but holding four times
/// the memory after training, jemalloc slower than glibc as it is.
///
/// The workspace's only `unsafe`: mallopt is a plain C call that sets three
/// of malloc's parameters; it runs first in `main`, before any other thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mallopt takes two integers and only changes malloc's
    // parameters; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
