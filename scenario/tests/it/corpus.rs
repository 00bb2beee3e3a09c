//! The scenario corpus must always parse and check; running it needs an emulator
//! (`wa-emulator run scenario/scenarios`).

#[test]
fn every_corpus_scenario_parses_and_checks() {
    let files = scenario::cli::discover(&["scenarios".into()]).unwrap();
    assert!(files.len() >= 60, "the corpus has {} files", files.len());
    let (loaded, diagnostics) = scenario::cli::load_all(&files);
    assert!(diagnostics.is_empty(), "{diagnostics}");
    assert_eq!(loaded.len(), files.len());
}

#[test]
fn corpus_files_are_kebab_case_stories_in_topic_folders() {
    for f in scenario::cli::discover(&["scenarios".into()]).unwrap() {
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
