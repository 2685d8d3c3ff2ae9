//! The documentation is run, not just read: every `hbcp` line of the README's runnable blocks
//! (fenced ```` ```sh runnable ````) and of every command's `--help` examples runs here, with
//! its URLs rewritten to a sandbox (local folders, and Azurite when scripts/test.sh started it),
//! expecting exit 0 or the `# exit N` its comment names. Also the help's shape (examples, width,
//! flags only where they apply), `--version`, the completions (exercised by bash itself) and the
//! man pages.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::util::*;

static N: AtomicU64 = AtomicU64::new(0);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sample() -> PathBuf {
    repo().join("examples/hbase-sample")
}

/// One documented command line: its words and the exit status its comment promises.
#[derive(Debug, Clone)]
struct Line {
    text: String,
    words: Vec<String>,
    exit: i32,
    until_ctrl_c: bool,
}

/// Parse `hbcp ARGS…   # comment` (or the README's `cargo run --release -- ARGS`); None for
/// comments, blank lines and other programs' commands.
fn parse_line(raw: &str) -> Option<Line> {
    let t = raw.trim();
    let (cmd, comment) = match t.find(" #") {
        Some(i) => (t[..i].trim(), t[i + 2..].trim()),
        None => (t, ""),
    };
    let cmd = cmd
        .strip_prefix("cargo run --release -- ")
        .map(|r| format!("hbcp {r}"))
        .unwrap_or_else(|| cmd.to_string());
    let mut words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
    if words.first().map(String::as_str) != Some("hbcp") {
        return None;
    }
    words.remove(0);
    let exit = comment
        .strip_prefix("exit ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Some(Line {
        text: t.to_string(),
        words,
        exit,
        until_ctrl_c: comment.contains("until Ctrl-C"),
    })
}

/// Where the documented commands run: a temp folder standing for `/`, the working directory and
/// `~`, and Azurite (or, without it, local folders) standing for the Azure accounts.
struct Sandbox {
    dir: tempfile::TempDir,
    azurite: Option<String>,
    tag: u64,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
            azurite: crate::cloud::azurite(),
            tag: N.fetch_add(1, Ordering::SeqCst),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The sandbox's stand-in for a documented path or URL.
    fn map(&self, w: &str) -> String {
        if let Some((scheme, rest)) = w.split_once("://")
            && matches!(scheme, "wasbs" | "abfss")
        {
            let (container, rest) = rest.split_once('@').expect("CONTAINER@ACCOUNT");
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let account = host.split('.').next().unwrap();
            return match &self.azurite {
                Some(base) => format!(
                    "{base}/devstoreaccount1/{account}-{container}-{}-{}/{path}",
                    std::process::id(),
                    self.tag
                ),
                None => s(&self
                    .root()
                    .join("azure")
                    .join(account)
                    .join(container)
                    .join(path)),
            };
        }
        if w == "examples/hbase-sample" {
            return s(&sample());
        }
        if let Some(rest) = w.strip_prefix("~/") {
            return s(&self.root().join("home").join(rest));
        }
        if let Some(rest) = w.strip_prefix('/') {
            return s(&self.root().join(rest));
        }
        w.to_string()
    }

    /// Put the sample where a documented command expects an existing HBase root.
    fn seed(&self, lines: &[Line]) {
        let all: Vec<&str> = lines
            .iter()
            .flat_map(|l| &l.words)
            .map(String::as_str)
            .collect();
        if all.contains(&"/data/hbase") {
            let dst = self.root().join("data/hbase");
            fs::create_dir_all(dst.parent().unwrap()).unwrap();
            let st = Command::new("cp")
                .arg("-a")
                .arg(sample())
                .arg(&dst)
                .status()
                .unwrap();
            assert!(st.success());
        }
        for w in all.iter().filter(|w| w.contains("@oldcluster.")) {
            let r = hbcp(["copy", &s(&sample()), &self.map(w), "--progress", "none"]);
            assert_eq!(r.code, 0, "seeding {w}: {r:?}");
        }
    }

    /// Run one documented line; returns what it printed.
    fn run(&self, l: &Line) -> Run {
        let mut words: Vec<String> = Vec::new();
        let mut out_file = None;
        let mut it = l.words.iter();
        while let Some(w) = it.next() {
            if w == ">" {
                out_file = Some(PathBuf::from(self.map(it.next().expect("a file after >"))));
            } else {
                words.push(self.map(w));
            }
        }
        let mut cmd = Command::new(bin());
        cmd.args(&words)
            .current_dir(self.root())
            .env("HOME", self.root().join("home"))
            .env("XDG_STATE_HOME", self.root().join("home/.local/state"));
        if l.until_ctrl_c {
            return until_ctrl_c(cmd, l);
        }
        let r = to_run(cmd.output().unwrap());
        if let Some(f) = out_file {
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(&f, &r.stdout).unwrap();
        }
        assert_eq!(
            r.code,
            l.exit,
            "`{}` as `hbcp {}`: {r:?}",
            l.text,
            words.join(" ")
        );
        r
    }

    /// Run a sequence of lines in order, seeded first.
    fn run_all(&self, lines: &[Line]) -> Vec<Run> {
        self.seed(lines);
        lines.iter().map(|l| self.run(l)).collect()
    }
}

/// `hbcp sync … --watch` runs until Ctrl-C: wait for its first cycle's line, send SIGINT, and
/// expect the clean stop (exit 0) with the RPO line.
fn until_ctrl_c(mut cmd: Command, l: &Line) -> Run {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("`{}` ended before its first cycle: {seen}", l.text);
        }
        seen.push_str(&line);
        if line.contains("sync cycle 1:") {
            break;
        }
    }
    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        let _ = tx.send((rest, child.wait()));
    });
    let (rest, status) = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("`{}` did not stop within 60 s of SIGINT", l.text));
    seen.push_str(&rest);
    let code = status.unwrap().code().unwrap_or(-1);
    assert_eq!(code, 0, "`{}` after SIGINT: {seen}", l.text);
    assert!(seen.contains("RPO"), "`{}` printed no RPO: {seen}", l.text);
    Run {
        code,
        stdout: String::new(),
        stderr: seen,
    }
}

/// The README's fenced blocks, by section: (heading, runnable, lines of the block).
fn readme_blocks() -> Vec<(String, bool, Vec<String>)> {
    let text = fs::read_to_string(repo().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut block: Option<(bool, Vec<String>)> = None;
    for raw in text.lines() {
        let t = raw.trim_start();
        if block.is_none() && t.starts_with('#') {
            heading = t.trim_start_matches('#').trim().to_string();
        }
        if let Some(info) = t.strip_prefix("```") {
            match block.take() {
                Some((runnable, lines)) => out.push((heading.clone(), runnable, lines)),
                None => {
                    let mut info = info.split_whitespace();
                    let lang = info.next().unwrap_or("");
                    let runnable = matches!(lang, "sh" | "bash") && info.any(|w| w == "runnable");
                    block = Some((runnable, Vec::new()));
                }
            }
            continue;
        }
        if let Some((_, lines)) = &mut block {
            lines.push(t.to_string());
        }
    }
    assert!(block.is_none(), "README.md: a fenced block is not closed");
    out.into_iter()
        .map(|(h, r, lines)| (h, r, joined(lines.iter().map(String::as_str))))
        .collect()
}

#[test]
fn readme_every_hbcp_line_sits_in_a_runnable_block() {
    let mut runnable = 0;
    for (heading, is_runnable, lines) in readme_blocks() {
        for l in &lines {
            if parse_line(l).is_some() {
                assert!(
                    is_runnable,
                    "README.md ({heading}): `{l}` is in a block not marked `sh runnable`, so no test runs it"
                );
                runnable += 1;
            }
        }
    }
    assert!(
        runnable >= 15,
        "only {runnable} runnable hbcp lines in README.md"
    );
}

#[test]
fn readme_runbooks_run_with_their_documented_exit_status() {
    let mut sections: BTreeMap<String, Vec<Line>> = BTreeMap::new();
    let mut order = Vec::new();
    for (heading, runnable, lines) in readme_blocks() {
        if !runnable {
            continue;
        }
        if !sections.contains_key(&heading) {
            order.push(heading.clone());
        }
        sections
            .entry(heading)
            .or_default()
            .extend(lines.iter().filter_map(|l| parse_line(l)));
    }
    for must in [
        "Migrate an HDInsight",
        "Disaster recovery",
        "Export one snapshot",
        "Tables and ranges",
        "Beyond one machine",
        "A fresh machine",
    ] {
        assert!(
            order.iter().any(|h| h.contains(must)),
            "README.md has no runnable section {must:?}: {order:?}"
        );
    }
    for heading in order {
        let lines = &sections[&heading];
        let sb = Sandbox::new();
        sb.run_all(lines);
        // The fresh machine's copy is judged by the tree itself, not only by hbcp's word.
        if heading.contains("A fresh machine") {
            assert_same_tree(&sample(), &sb.root().join("tmp/hbase-copy"));
        }
    }
}

/// The subcommands `hbcp --help` lists.
fn commands() -> Vec<String> {
    let r = hbcp(["--help"]);
    assert_eq!(r.code, 0, "{r:?}");
    let list = r
        .stdout
        .split("Commands:")
        .nth(1)
        .expect("a Commands: section");
    let v: Vec<String> = list
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| l.as_bytes().get(2).is_some_and(|b| b.is_ascii_lowercase()))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|c| c != "help")
        .collect();
    assert!(v.len() >= 15, "{v:?}");
    v
}

fn help(cmd: &str) -> String {
    let r = hbcp([cmd, "--help"]);
    assert_eq!(r.code, 0, "{cmd} --help: {r:?}");
    r.stdout
}

fn examples(help: &str) -> Vec<Line> {
    let ex = help.split("\nExamples:\n").nth(1).unwrap_or("");
    joined(ex.lines())
        .iter()
        .filter_map(|l| parse_line(l))
        .collect()
}

/// Lines with their `\` continuations joined, as a shell reads them.
fn joined<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for l in lines {
        let t = l.trim();
        let (body, cont) = match t.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (t, false),
        };
        match out.last_mut() {
            Some(last) if open => {
                last.push(' ');
                last.push_str(body);
            }
            _ => out.push(body.to_string()),
        }
        open = cont;
    }
    out
}

#[test]
fn help_of_every_command_ends_with_2_to_4_examples_that_run() {
    for cmd in commands() {
        let h = help(&cmd);
        let ex = examples(&h);
        let own = ex.iter().filter(|l| l.words.first() == Some(&cmd)).count();
        assert!(
            own >= 1 && (2..=5).contains(&ex.len()),
            "hbcp {cmd} --help: {} examples, {own} of {cmd}:\n{h}",
            ex.len()
        );
        Sandbox::new().run_all(&ex);
    }
}

#[test]
fn help_lines_fit_100_columns_and_flags_show_where_they_apply() {
    for cmd in commands() {
        let h = help(&cmd);
        for l in h.lines() {
            assert!(
                l.chars().count() <= 100,
                "hbcp {cmd} --help: a line of {} columns: {l}",
                l.chars().count()
            );
        }
        let writes = matches!(
            cmd.as_str(),
            "copy" | "run" | "sync" | "backup" | "restore" | "bench"
        );
        assert_eq!(
            h.contains("--put-md5"),
            writes,
            "hbcp {cmd} --help and --put-md5"
        );
        assert_eq!(
            h.contains("--azure-endpoint"),
            !matches!(cmd.as_str(), "report" | "completions" | "jobs"),
            "hbcp {cmd} --help and --azure-endpoint"
        );
    }
    let v = help("verify");
    assert!(
        !v.contains("Copy only"),
        "verify --help speaks of copying: {v}"
    );
    assert!(v.contains("--deep"), "{v}");
    // A flag where it does not apply is refused, not ignored.
    let r = hbcp(["report", "r.json", "--html", "r.html", "--put-md5"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = hbcp(["snapshots", "/nonexistent", "--put-md5"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn verify_deep_is_verify_deep_and_refuses_another_verify() {
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("copy");
    let r = copy(&sample(), &dst, &[]);
    assert_eq!(r.code, 0, "{r:?}");
    let deep = |extra: &[&str]| {
        let rep = t
            .path()
            .join(format!("v{}.json", N.fetch_add(1, Ordering::SeqCst)));
        let mut a = vec![
            "verify".to_string(),
            s(&sample()),
            s(&dst),
            "--progress".into(),
            "none".into(),
            "--report".into(),
            s(&rep),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        let r = hbcp(a);
        (r, fs::read_to_string(&rep).unwrap_or_default())
    };
    let (a, ra) = deep(&["--deep"]);
    let (b, rb) = deep(&["--verify", "deep"]);
    let (c, rc) = deep(&[]);
    // The sample's HFiles are random blocks under a valid trailer: the deep walk finds them and
    // fails the run, the default check does not look — so --deep is the deep walk.
    assert_eq!((a.code, b.code, c.code), (1, 1, 0), "{a:?}\n{b:?}\n{c:?}");
    let findings = |r: &str| {
        r.matches("invalid_hfile_blocks").count() + r.matches("corrupt_hfile_block").count()
    };
    assert_eq!(
        findings(&ra),
        findings(&rb),
        "--deep and --verify deep differ:\n{ra}\n{rb}"
    );
    assert!(
        findings(&ra) > findings(&rc),
        "--deep found no more than the default check:\n{ra}\n{rc}"
    );
    let r = hbcp([
        "verify",
        &s(&sample()),
        &s(&dst),
        "--deep",
        "--verify",
        "size",
    ]);
    assert_eq!(r.code, 2, "--deep with --verify size: {r:?}");
}

#[test]
fn version_names_the_commit_date_target_and_object_store() {
    let r = hbcp(["--version"]);
    assert_eq!(r.code, 0, "{r:?}");
    let field = |k: &str| {
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .unwrap_or_else(|| panic!("no {k}: line in {}", r.stdout))
            .to_string()
    };
    assert!(
        r.stdout
            .starts_with(&format!("hbcp {}\n", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.stdout
    );
    // The commit is the checkout's, asked of git independently (a tree without .git says
    // "unknown", which this test would then see from git too).
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    match head.trim() {
        "" => assert_eq!(field("commit"), "unknown"),
        h => assert!(
            h.starts_with(&field("commit")) && field("commit").len() == 12,
            "commit {} vs HEAD {h}",
            field("commit")
        ),
    }
    assert!(
        field("built").len() == 20 && field("built").ends_with('Z'),
        "{}",
        r.stdout
    );
    assert_eq!(field("target"), "x86_64-unknown-linux-gnu");
    let lock = fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let os = field("object_store");
    assert!(
        lock.contains(&format!("name = \"object_store\"\nversion = \"{os}\"")),
        "object_store {os}"
    );
    let short = hbcp(["-V"]);
    assert!(short.stdout.contains(&field("commit")), "{short:?}");
}

#[test]
fn completions_bash_complete_commands_and_flags_in_bash_itself() {
    let t = tempfile::tempdir().unwrap();
    let script = t.path().join("hbcp.bash");
    let r = hbcp(["completions", "bash"]);
    assert_eq!(r.code, 0, "{r:?}");
    fs::write(&script, &r.stdout).unwrap();
    // Bash sources the script and asks it, as it does on <TAB>.
    let ask = |words: &str, cword: usize| {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _hbcp hbcp \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let cmds = ask("hbcp ver", 1);
    assert_eq!(cmds.trim(), "verify", "{cmds}");
    let flags = ask("hbcp verify --de", 2);
    assert!(flags.lines().any(|l| l == "--deep"), "{flags}");
    let none = ask("hbcp report --put", 2);
    assert!(!none.contains("--put-md5"), "{none}");
    for (sh, mark) in [("zsh", "#compdef hbcp"), ("fish", "complete -c hbcp")] {
        let r = hbcp(["completions", sh]);
        assert!(r.code == 0 && r.stdout.contains(mark), "{sh}: {r:?}");
    }
    let r = hbcp(["completions", "tcsh"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn man_pages_render_with_each_commands_examples() {
    let t = tempfile::tempdir().unwrap();
    let r = hbcp(["man"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH hbcp 1"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    let r = hbcp(["man", "--dir", &s(t.path())]);
    assert_eq!(r.code, 0, "{r:?}");
    for page in [
        "hbcp.1",
        "hbcp-copy.1",
        "hbcp-verify.1",
        "hbcp-completions.1",
    ] {
        let text =
            fs::read_to_string(t.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}");
    }
    assert!(
        !t.path().join("hbcp-man.1").exists(),
        "the hidden man command got a page"
    );
    // man(1) itself renders a page, examples included, where man-db is installed.
    if let Ok(o) = Command::new("man")
        .arg("-l")
        .arg(t.path().join("hbcp-copy.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        && o.status.success()
    {
        let page = String::from_utf8_lossy(&o.stdout);
        assert!(
            page.contains("Examples:") && page.contains("hbcp copy"),
            "{page}"
        );
    }
    let r = hbcp(["man", "--dir", "/proc/hbcp-no-such-dir/x"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("panicked"), "{r:?}");
}
