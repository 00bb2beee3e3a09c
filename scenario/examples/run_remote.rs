//! `wa-emulator run` without the emulator linked in: runs scenarios against an
//! emulator at `--target URL` (the in-process door needs the `wa-emulator` binary).
//!
//! ```text
//! cargo run -p scenario --example run_remote -- --target http://127.0.0.1:4004 scenario/scenarios
//! ```

use clap::Parser;
use scenario::runner::target::NoInProcess;
use std::sync::Arc;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: scenario::RunArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    std::process::exit(scenario::run(cli.run, Arc::new(NoInProcess)).await);
}
