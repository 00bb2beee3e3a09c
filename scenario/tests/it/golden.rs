//! Invalid scenarios and the exact diagnostics they must produce.
//!
//! Each `tests/invalid/NAME.scn` has a `NAME.expected` beside it. To accept new output
//! after an intended change, run with `SCENARIO_BLESS=1` and review the diff.

use std::path::Path;

#[test]
fn invalid_scenarios_render_their_expected_diagnostics() {
    let bless = std::env::var_os("SCENARIO_BLESS").is_some();
    let dir = Path::new("tests/invalid");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/invalid exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "scn"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut mismatched = Vec::new();
    for scn in &files {
        let name = format!(
            "tests/invalid/{}",
            scn.file_name().unwrap().to_string_lossy()
        );
        let text = std::fs::read_to_string(scn).unwrap();
        let rendered = match scenario::cli::load(&name, &text) {
            Ok(_) => format!("(no diagnostics: {name} is valid, but files here must not be)\n"),
            Err(r) => r,
        };
        let expected_path = scn.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != rendered {
            mismatched.push(format!(
                "=== {name}: expected\n{expected}=== got\n{rendered}"
            ));
        }
    }
    assert!(
        mismatched.is_empty(),
        "{}\n(run with SCENARIO_BLESS=1 to accept the new output)",
        mismatched.join("\n")
    );
}
