//! Writes N scenario files of 15 steps each, for the speed benchmark in the README.
//!
//! ```text
//! cargo run -p scenario --example gen_bench -- 1000 /tmp/bench
//! wa-emulator run -q /tmp/bench
//! ```

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example: it prints its results"
)]

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "bench".into()));
    std::fs::create_dir_all(&dir).expect("the folder can be created");
    for i in 0..n {
        std::fs::write(
            dir.join(format!("story-{i:04}.scn")),
            scenario::bench_scenario(i),
        )
        .expect("writable");
    }
    println!("wrote {n} scenarios to {}", dir.display());
}
