//! `abdoseg quickstart` as a user runs it (the real binary, small settings): it goes from
//! nothing to a report; Ctrl-C during training stops it, and the same command again
//! resumes the same job after its last saved epoch instead of starting over.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

fn quickstart(store: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_abdoseg"));
    command
        .args(["quickstart", "--cases", "6", "--size", "32", "--depth", "4"])
        .args([
            "--base-filters",
            "4",
            "--epochs",
            "5",
            "--slices-per-epoch",
            "64",
            "--variants-per-template",
            "2",
        ])
        .arg("--store")
        .arg(format!("file://{}", store.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

#[test]
fn ctrl_c_then_the_same_command_resumes_the_training_job() {
    let store = tempfile::tempdir().unwrap();
    let mut first = quickstart(store.path()).spawn().unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let mut job = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("job ") {
            job = Some(id.trim().to_owned());
        }
        // The second epoch's row: the first epoch's checkpoint is surely saved.
        if line.trim_start().starts_with("2 ") && job.is_some() {
            break;
        }
    }
    let job = job.expect("a training job started");
    let status = Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let code = first.wait().unwrap();
    assert_eq!(code.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("run the same command to resume")),
        "{rest:?}"
    );
    assert!(!rest.iter().any(|l| l.contains("[5/5] report")));

    std::thread::sleep(Duration::from_millis(200));
    let second = quickstart(store.path()).output().unwrap();
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{text}");
    let resumed = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("resuming job {job} after epoch ")))
        .unwrap_or_else(|| panic!("no resume of {job}: {text}"));
    let after: u32 = resumed.trim().parse().unwrap();
    assert!((1..5).contains(&after), "{text}");
    assert!(text.contains("model "), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("job ")),
        "no new job: {text}"
    );
    assert!(text.contains("| Model | Background | Liver | Kidneys | Spleen | Pancreas |"));
    // The shared real case beside the checkout joins training by default, as template
    // variants, so no real case is scored as if unseen.
    assert!(text.contains("template variants: "), "{text}");
    assert!(
        text.contains("no real validation: the real templates are in the training data"),
        "{text}"
    );
    assert!(text.contains("report.html"), "{text}");
}

#[test]
fn zscore_is_refused_before_anything_is_written() {
    // Quickstart mixes datasets (phantoms, template variants) and z-score statistics are
    // per dataset, so the scheme is refused up front with the command that can do it.
    let store = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_abdoseg"))
        .args(["quickstart", "--scheme", "zscore", "--store"])
        .arg(format!("file://{}", store.path().display()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("abdoseg dataset prepare --scheme zscore"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0);
}
