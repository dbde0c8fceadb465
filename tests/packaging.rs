//! What the Debian package ships: the man pages and completions kept in contrib/ are
//! those this binary generates, and each systemd unit's command works as shipped, with
//! nothing in /etc/default/httphooks (an SQLite file in the unit's working directory).
//! .ci/run builds the package itself and checks its contents with dpkg and systemd.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn contrib() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib"))
}

fn httphooks(args: &[&str]) -> std::process::Output {
    Command::new(common::binary()).args(args).output().unwrap()
}

const REGENERATE: &str = "run `cargo run -- man --out-dir contrib/man` and \
    `cargo run -- completions SHELL > contrib/completions/FILE` (bash: httphooks.bash, \
    zsh: _httphooks, fish: httphooks.fish), then commit them";

#[test]
fn the_shipped_man_pages_and_completions_are_what_the_binary_generates() {
    let generated = tempfile::tempdir().unwrap();
    let out = httphooks(&["man", "--out-dir", generated.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let pages = names(generated.path());
    assert_eq!(pages, names(&contrib().join("man")), "{REGENERATE}");
    for page in [
        "httphooks.1",
        "httphooks-send_callbacks.1",
        "httphooks-hooks-add.1",
    ] {
        assert!(pages.contains(&page.to_owned()), "{pages:?}");
    }
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("wrote {} man pages", pages.len())),
        "{out:?}"
    );
    for page in &pages {
        assert_eq!(
            std::fs::read_to_string(generated.path().join(page)).unwrap(),
            std::fs::read_to_string(contrib().join("man").join(page)).unwrap(),
            "contrib/man/{page} is stale: {REGENERATE}"
        );
    }
    for (shell, file) in [
        ("bash", "httphooks.bash"),
        ("zsh", "_httphooks"),
        ("fish", "httphooks.fish"),
    ] {
        let out = httphooks(&["completions", shell]);
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read_to_string(contrib().join("completions").join(file)).unwrap(),
            "contrib/completions/{file} is stale: {REGENERATE}"
        );
    }
}

#[test]
fn man_out_dir_that_cannot_be_made_is_one_sentence_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = httphooks(&["man", "--out-dir", file.join("man").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot create") && err.contains("name a folder"),
        "{err}"
    );
    let out = httphooks(&["man", "send_callbacks", "--out-dir", "x"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// The words of a unit's `ExecStart=` after the program's name, which must be httphooks.
fn exec_start(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(contrib().join(unit)).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has an ExecStart"));
    let mut words = line.split_whitespace().map(str::to_owned);
    assert_eq!(words.next().as_deref(), Some("httphooks"), "{unit}: {line}");
    for setting in [
        "EnvironmentFile=-/etc/default/httphooks",
        "StateDirectory=httphooks",
        "WorkingDirectory=%S/httphooks",
        "User=httphooks",
        "StateDirectoryMode=0700",
    ] {
        assert!(text.lines().any(|l| l == setting), "{unit} has {setting}");
    }
    words.collect()
}

/// The unit's command in a fresh working directory (its state directory), with none of
/// the variables /etc/default/httphooks may set, plus `env`.
fn run_as_the_unit(workdir: &Path, args: &[String], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(common::binary());
    command
        .args(args)
        .current_dir(workdir)
        .env_remove("DATABASE_URL")
        .env_remove("HTTPHOOKS_METRICS_FILE")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn each_shipped_unit_works_as_shipped_on_its_default_sqlite_file() {
    let state = tempfile::tempdir().unwrap();
    // An operator who named a metrics folder that does not exist still gets delivery
    // and a green run, with a warning.
    let missing = state.path().join("no-such-folder/httphooks.prom");
    let out = run_as_the_unit(
        state.path(),
        &exec_start("httphooks-send.service"),
        &[("HTTPHOOKS_METRICS_FILE", missing.to_str().unwrap())],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("metrics"),
        "{out:?}"
    );
    assert!(state.path().join("httphooks.sqlite3").exists());
    // An environment file that sets the variable to nothing means no metrics file.
    let out = run_as_the_unit(
        state.path(),
        &exec_start("httphooks-send.service"),
        &[("HTTPHOOKS_METRICS_FILE", "")],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");

    let out = run_as_the_unit(state.path(), &exec_start("httphooks-cleanup.service"), &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // The following run stays until its deadline; `systemctl stop` (SIGTERM) ends it
    // at once and cleanly.
    let metrics = state.path().join("httphooks.prom");
    let mut follow = run_as_the_unit(
        state.path(),
        &exec_start("httphooks-follow.service"),
        &[("HTTPHOOKS_METRICS_FILE", metrics.to_str().unwrap())],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(follow.try_wait().unwrap().is_none(), "it follows");
    unsafe { libc::kill(follow.id() as libc::pid_t, libc::SIGTERM) };
    let stopped = Instant::now();
    let out = follow.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stopped.elapsed() < Duration::from_secs(3));
    assert!(
        std::fs::read_to_string(&metrics)
            .unwrap()
            .contains("httphooks_"),
        "HTTPHOOKS_METRICS_FILE is read from the environment"
    );
}

#[test]
fn the_environment_file_example_names_only_what_httphooks_reads() {
    let example = std::fs::read_to_string(contrib().join("httphooks.default")).unwrap();
    let named: Vec<&str> = example
        .lines()
        .filter_map(|l| l.strip_prefix('#')?.split_once('=').map(|(name, _)| name))
        .filter(|name| !name.contains(' '))
        .collect();
    assert_eq!(
        named,
        ["DATABASE_URL", "HTTPHOOKS_METRICS_FILE", "ORDERS_API_TOKEN"],
        "{example}"
    );
    let help = String::from_utf8(httphooks(&["send_callbacks", "--help"]).stdout).unwrap();
    assert!(help.contains("HTTPHOOKS_METRICS_FILE"), "{help}");
}

#[test]
fn a_pipe_or_a_link_at_the_metrics_path_is_a_warning_and_delivery_goes_on() {
    let state = tempfile::tempdir().unwrap();
    let fifo = state.path().join("httphooks.prom");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let victim = state.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let link = state.path().join("link.prom");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    for path in [&fifo, &link] {
        let started = Instant::now();
        let out = run_as_the_unit(
            state.path(),
            &exec_start("httphooks-send.service"),
            &[("HTTPHOOKS_METRICS_FILE", path.to_str().unwrap())],
        )
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "it never blocks"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
            "{out:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
}
