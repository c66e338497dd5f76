//! The `osteo-edc` binary: see `osteo-edc --help`.

fn main() -> std::process::ExitCode {
    osteo_server::cli::main()
}
