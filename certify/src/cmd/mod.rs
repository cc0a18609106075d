//! One module per subcommand; each owns its clap arguments and returns the exit code.
pub mod certify;
pub mod fleet;
pub mod gate;
pub mod guest;
pub mod initramfs;
pub mod package;
pub mod probe;
pub mod real_guest;
pub mod report;
pub mod run;
pub mod serve;
pub mod serve_backend;
