//! The `osteo-edc` binary: see `osteo-edc --help`.

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    osteo_server::cli::main()
}

/// glibc's malloc serves an allocation above its mapping threshold (128 KiB
/// at first, 32 MiB at most) with a mapping of its own and hands it back to
/// the kernel when freed. burn's CPU backend allocates a new buffer for
/// every tensor (one 16-channel map of two 192² views is 4.5 MB; of a
/// training batch of 8 two-view cases, 38 MB), so layer after layer was
/// faulted in and zeroed by the kernel again, and every unmapping flushed
/// every core's page tables: a quarter of a CPU inference, and the
/// convolutions' backward pass took three times as long. Mappings are
/// turned off (`M_MMAP_MAX` 0), so every block comes from the heap and a
/// freed one is reused; the heap is given back only above 256 MiB of free
/// space at its top (docs/build.md, "The model", has the numbers). mimalloc
/// and jemalloc were measured as well: mimalloc as fast at inference but
/// holding four times the memory after training, jemalloc slower than glibc
/// as it is.
///
/// The workspace's only `unsafe`: mallopt is a plain C call that sets two
/// of malloc's parameters; it runs first in `main`, before any other thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mallopt takes two integers and only changes malloc's
    // parameters; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
