//! The scenario corpus: it always parses and checks, its files are stories in topic
//! folders, and every story passes against the real emulator, in-process, as
//! `wa-emulator run scenario/scenarios` runs it. The `app/` stories need an app under
//! test (`--app`), so here they are skipped, as `wa-emulator run` skips them without one;
//! `./test.sh` runs them against the example app.

use scenario::cli::{discover, execute, load_all, RunArgs, Verdict};
use scenario::runner::Options;
use scenario::InProcess;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn every_corpus_scenario_parses_and_checks() {
    let files = discover(&["scenarios".into()]).unwrap();
    assert!(files.len() >= 60, "the corpus has {} files", files.len());
    let (loaded, diagnostics) = load_all(&files);
    assert!(diagnostics.is_empty(), "{diagnostics}");
    assert_eq!(loaded.len(), files.len());
}

#[test]
fn corpus_files_are_kebab_case_stories_in_topic_folders() {
    for f in discover(&["scenarios".into()]).unwrap() {
        let rel = f.strip_prefix("scenarios").unwrap();
        assert_eq!(
            rel.components().count(),
            2,
            "{} is not in a topic folder",
            f.display()
        );
        let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            stem.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{stem} is not kebab-case"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_story_passes_against_an_in_process_emulator() {
    let files = discover(&["scenarios".into()]).unwrap();
    let (loaded, diagnostics) = load_all(&files);
    assert!(diagnostics.is_empty(), "{diagnostics}");
    let args = RunArgs {
        paths: vec!["scenarios".into()],
        jobs: None,
        seed: 0,
        partition: None,
        junit: None,
        target: None,
        no_tenants: false,
        config: None,
        app: None,
        admin_token: None,
        timeout: Duration::from_secs(60),
        check: false,
        quiet: true,
    };
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let outcomes = execute(
        loaded,
        jobs,
        &args,
        &Options::default(),
        Arc::new(InProcess),
    )
    .await;
    assert_eq!(outcomes.len(), files.len());
    let in_app_folder = |name: &str| Path::new(name).starts_with("scenarios/app");
    let mut failed = Vec::new();
    for o in &outcomes {
        match (&o.verdict, in_app_folder(&o.name)) {
            (Verdict::Passed, false) | (Verdict::Skipped(_), true) => {}
            (Verdict::Failed(why), _) => failed.push(format!("---- {} ----\n{why}", o.name)),
            (Verdict::Skipped(why), false) => failed.push(format!(
                "---- {} ----\n  skipped outside app/: {why}",
                o.name
            )),
            (Verdict::Passed, true) => failed.push(format!(
                "---- {} ----\n  ran without an app: stories in app/ must expect the app",
                o.name
            )),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} corpus stories failed:\n{}\n\nfailing files:\n  {}",
        failed.len(),
        outcomes.len(),
        failed.join("\n"),
        failed
            .iter()
            .map(|f| f
                .lines()
                .next()
                .unwrap_or("")
                .trim_matches(|c| c == '-' || c == ' '))
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}
