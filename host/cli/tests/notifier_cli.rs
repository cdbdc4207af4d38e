//! What a notifier's author and operator see from the CLI (issue 12): `plugin inspect` takes
//! an installed plugin's id as well as a file, and `integration list` shows what each
//! notifier is subscribed to, after `integration add` refused event names the host does not
//! know.

use std::path::PathBuf;
use std::process::{Command, Output};

struct Env {
    tmp: tempfile::TempDir,
    home: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    Env { tmp, home }
}

fn proofpix(env: &Env, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofpix"))
        .args(args)
        .current_dir(env.tmp.path())
        .env("PROOFPIX_HOME", &env.home)
        .env("ALERTS_HOOK", "https://alerts.invalid/workflows/1")
        // The built-in Teams notifier is signed with this development build's own key.
        .env("PROOFPIX_TRUST_DEVELOPMENT_BUILD", "1")
        .env_remove("PROOFPIX_MASTER_KEY")
        .env_remove("PROOFPIX_LOG")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn plugin_inspect_takes_an_installed_plugins_id_a_built_in_id_or_a_file() {
    let env = env();
    // An installed plugin: the built-in webhook notifier's file, installed as an author's
    // plugin would be (its development key is not in this host's trust store).
    let file = env.tmp.path().join("hook.wasm");
    std::fs::write(
        &file,
        proofpix_plugin_artifacts::first_party_plugin("webhook").unwrap(),
    )
    .unwrap();
    let out = proofpix(
        &env,
        &[
            "plugin",
            "install",
            file.to_str().unwrap(),
            "--grant",
            "all",
            "--allow-unsigned",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = proofpix(&env, &["plugin", "inspect", "webhook"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("webhook "), "{text}");
    let installed = env.home.join("plugins").join("webhook.wasm");
    assert!(
        text.contains(&format!(
            "from:     installed plugin webhook ({})",
            installed.display()
        )),
        "{text}"
    );

    let out = proofpix(&env, &["plugin", "inspect", "teams"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("from:     the teams plugin built into this binary"),
        "{}",
        stdout(&out)
    );

    // A file is still a file, and shows no `from:` line.
    let out = proofpix(&env, &["plugin", "inspect", "hook.wasm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("from:"), "{}", stdout(&out));

    let out = proofpix(&env, &["plugin", "inspect", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(
            "proofpix: nope is neither a file nor the id of an installed plugin (installed: \
             webhook; built in: "
        ),
        "{err}"
    );
}

#[test]
fn integration_list_shows_a_notifiers_subscriptions_and_unknown_events_are_refused() {
    let env = env();
    let add = |name: &str, subscriptions: &str| {
        proofpix(
            &env,
            &[
                "integration",
                "add",
                name,
                "--plugin",
                "teams",
                "-s",
                "webhook_url=env:ALERTS_HOOK",
                "--subscriptions",
                subscriptions,
            ],
        )
    };
    let out = add(
        "alerts",
        r#"{"events":["high-risk","integration-unhealthy"],"digest":true}"#,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let out = add("typo", r#"{"events":["high-risk","batch-complete"]}"#);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "proofpix: integration typo: unknown event \"batch-complete\" in the subscriptions; the \
         events are high-risk, batch-completed, batch-failed, unhealthy (the contract's \
         high-risk-files and integration-unhealthy are accepted too)"
    );

    let out = proofpix(&env, &["integration", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("alerts "), "{text}");
    assert_eq!(
        lines[1].trim(),
        "subscribed: high-risk, unhealthy from * (min risk high, digest)"
    );
}
