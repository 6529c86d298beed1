//! The `dp` binary: everything is in the library (`dp::cli::main`).

// mimalloc instead of glibc's malloc: compile, docs and query planning
// allocate many small strings and JSON values from several threads, where
// glibc's arenas spent a quarter of `dp docs generate` (perf, 10,000
// models). DataFusion's own CLI makes the same choice.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dp::cli::main()
}
