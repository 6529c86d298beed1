//! The `dp` binary: everything is in the library (`dp::cli::main`).

// mimalloc instead of glibc's malloc: compile, docs and query planning
// allocate many small strings and JSON values from several threads, where
// glibc's arenas spent a quarter of `dp docs generate` (perf, 10,000
// models). DataFusion's own CLI makes the same choice.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (mimalloc.h; the crate has no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // mimalloc 3 returns freed pages to the OS after a second; a short run
    // that frees one phase's data before the next would then hold both
    // (docs generate at 10,000 models: 550 MB peak instead of 470 MB).
    // MIMALLOC_PURGE_DELAY still overrides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide option; mimalloc reads it on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    dp::cli::main()
}
