fn main() -> std::process::ExitCode {
    dp::cli::main()
}
