fn main() {
    std::process::exit(mcpshare::cli::main())
}
