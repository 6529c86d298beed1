//! The `dp` binary: everything is in the library (`dp::cli::main`).

// mimalloc instead of glibc's malloc: compile, docs and query planning
// allocate many small strings and JSON values from several threads, where
// glibc's arenas spent a quarter of `dp docs generate` (perf, 10,000
// models). DataFusion's own CLI makes the same choice.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (mimalloc.h; the crate has no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Commands that hold a whole project's metadata and its lineage plans,
/// phase after phase, and run no queries over data.
const METADATA_COMMANDS: &[&str] = &["docs", "ls", "lineage"];

fn main() -> std::process::ExitCode {
    // No transparent huge pages. mimalloc asks for them on its arenas
    // (`madvise`), and on a machine whose kernel defragments for such
    // requests, a first touch of each 2 MB stalls on compaction and zeroes
    // all of it: `dp check` of 10,000 expectations spent a third of its
    // CPU in the kernel's `clear_page` (0.04-0.76 s of system time from
    // run to run) and peaked at 360-420 MB; without them, 0.11-0.14 s and
    // 290-320 MB, and the demo pipeline at scale 10 as fast at 535-557 MB
    // instead of 585-680. The flag is this process's only (children
    // inherit it); MIMALLOC_ALLOW_THP=1 keeps them.
    #[cfg(target_os = "linux")]
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE sets one flag of this process; no memory is touched.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    dp::cli::main(|command| {
        // How long freed pages stay before mimalloc returns them to the OS
        // (its default: a second). Metadata commands free one phase's data
        // before the next: returned at once, `dp docs generate` at 10,000
        // models peaks at 490 MB instead of 550 (glibc: 680). Queries free
        // and reuse large buffers all the time: at 100 ms the demo pipeline
        // at scale 10 runs as fast as with glibc at 670 MB instead of
        // 730-920 MB peak, where returning them at once costs a quarter of
        // its time. `parse` and `compile` too: at 10,000 models, returning
        // pages at once had the kernel zero them again on the next
        // allocation (a quarter of the CPU in `clear_page`), 1.35-1.63 s
        // for `dp parse` against 1.09-1.20 s at 100 ms, for 10 MB more at
        // the peak (`dp ls`: no faster, 55 MB more). MIMALLOC_PURGE_DELAY
        // overrides.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            let delay = if METADATA_COMMANDS.contains(&command) { 0 } else { 100 };
            // SAFETY: sets a process-wide option; mimalloc reads it on each purge.
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay) };
        }
    })
}
