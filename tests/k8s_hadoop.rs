//! The Kubernetes and Hadoop files: they parse, and every hbcp subcommand and flag they use
//! exists (checked against the binary's own `--help`).

use std::path::Path;
use std::process::Command;

use crate::util::*;

fn flags_in(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap().to_string())
        .collect()
}

fn assert_run_flags_exist(file: &str, text: &str) {
    let help = hbcp(["run", "--help"]).stdout;
    for f in flags_in(text) {
        assert!(
            help.contains(&f),
            "{file} uses `hbcp run {f}`, which does not exist:\n{help}"
        );
    }
}

#[test]
fn kubernetes_indexed_job_parses_and_names_real_flags() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/k8s/job.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("job.yaml parses");
    let job = &docs[0];
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().unwrap();
    assert_eq!(spec["parallelism"].as_i64(), Some(n));
    let c = &spec["template"]["spec"]["containers"][0];
    let args = c["args"][0].as_str().unwrap();
    assert!(args.contains("hbcp run "), "{args}");
    assert!(
        args.contains(&format!("${{JOB_COMPLETION_INDEX}}/{n}")),
        "shard count matches completions: {args}"
    );
    assert_run_flags_exist("job.yaml", args);
    assert!(c["resources"]["limits"]["memory"].as_str().is_some());
}

#[test]
fn hadoop_streaming_scripts_are_valid_bash_and_name_real_flags() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hadoop");
    for f in ["hbcp-mapper.sh", "run-streaming.sh"] {
        let p = dir.join(f);
        let st = Command::new("bash").arg("-n").arg(&p).status().unwrap();
        assert!(st.success(), "bash -n {f}");
    }
    let mapper = std::fs::read_to_string(dir.join("hbcp-mapper.sh")).unwrap();
    let cmd = mapper
        .lines()
        .find(|l| l.contains("./hbcp run"))
        .expect("mapper runs hbcp run");
    let cont = mapper
        .lines()
        .skip_while(|l| !l.contains("./hbcp run"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(cmd.contains("--shard"));
    assert_run_flags_exist("hbcp-mapper.sh", &cont);
    let run = std::fs::read_to_string(dir.join("run-streaming.sh")).unwrap();
    assert!(run.contains("hbcp finalize"));
    assert!(hbcp(["finalize", "--help"]).code == 0);
}
