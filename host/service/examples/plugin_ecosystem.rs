//! Install time and hot-upgrade pause of plugins, for BENCHMARKS.md (issue 7).
//!
//! ```text
//! cargo run --release -p proofpix-service --example plugin_ecosystem -- 5 6
//! ```
//!
//! Arguments: installs per first-party plugin (default 5), upgrades (default 6).
//!
//! 1. Install time per first-party plugin, each on a fresh host (store and
//!    data directory in a temporary folder): the signature check alone
//!    (`proofpix_signing::verify`), then `Host::install_plugin` with an
//!    empty component cache (verify + precompile with Cranelift + describe +
//!    file and record written) and again on a second fresh host sharing the
//!    now-filled cache (verify + load of the precompiled artifact).
//! 2. Hot-upgrade pause: the well-behaved test plugin is installed and used
//!    by one integration; two tasks call it continuously, each call being
//!    what a new run does (`Host::context`, a new session, `describe`).
//!    Meanwhile the plugin is upgraded between 1.0.0 and 2.0.0 (the two
//!    builds in tests/plugins) with `Host::install_plugin`, alternately up
//!    and back, with no component cache (each install compiles). For each
//!    upgrade it prints the longest call that overlapped the install, the
//!    longest call in a quiet window of the same length just before, and
//!    whether every call after the install saw the new version. Then the
//!    swap alone: the other version precompiled first, only
//!    `Host::swap_plugin` while the calls run.
//!
//! Every figure is printed as median [min-max] over the runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofpix_service::{Host, HostOptions, InstallOptions, IntegrationSpec};
use proofpix_store::Store;
use proofpix_vault::{MasterKey, Secret};

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        f64::NAN
    } else if values.len() % 2 == 1 {
        values[values.len() / 2]
    } else {
        (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
    }
}

fn summary(values: &mut [f64]) -> String {
    let median = median(values);
    format!(
        "{median:.2} [{:.2}-{:.2}]",
        values.first().copied().unwrap_or(f64::NAN),
        values.last().copied().unwrap_or(f64::NAN)
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn fresh_host(root: &std::path::Path, cache: Option<std::path::PathBuf>) -> Host {
    let home = root.join("home");
    let store = Store::open(&home, &MasterKey::generate()).expect("store");
    Host::new(
        Arc::new(store),
        HostOptions {
            first_party_plugins: false,
            data_dir: Some(home),
            cache_dir: cache,
            // A development build signs its first-party plugins with its own key.
            trust_development_build: true,
            ..HostOptions::default()
        },
    )
    .await
    .expect("host")
}

fn grant_all(allow_unsigned: bool) -> InstallOptions {
    InstallOptions {
        allow_unsigned,
        grants: vec!["all".into()],
        repin: false,
    }
}

async fn install_times(runs: usize) {
    println!(
        "== install time per first-party plugin ({runs} installs each; load {})",
        load_average()
    );
    println!(
        "plugin | signed file | precompiled artifact | verify alone ms | install, empty cache ms | install, warm cache ms"
    );
    for (id, file) in proofpix_plugin_artifacts::first_party() {
        let mut verify = Vec::new();
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        let mut artifact = 0u64;
        for _ in 0..runs {
            let tmp = tempfile::tempdir().expect("temp dir");
            let cache = tmp.path().join("cache");
            let host = fresh_host(&tmp.path().join("a"), Some(cache.clone())).await;
            let trust = host.trust_store();
            let t = Instant::now();
            let verified = proofpix_signing::verify(file, &trust).expect("signed");
            verify.push(ms(t.elapsed()));
            drop(verified);

            let t = Instant::now();
            let report = host
                .install_plugin(file, &grant_all(false), "bench")
                .await
                .expect("install");
            cold.push(ms(t.elapsed()));
            assert_eq!(report.plugin.info().id, id);
            assert!(report.signer.is_some(), "verified as signed");
            artifact = std::fs::read_dir(&cache)
                .expect("cache dir")
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum();

            let host = fresh_host(&tmp.path().join("b"), Some(cache.clone())).await;
            let t = Instant::now();
            host.install_plugin(file, &grant_all(false), "bench")
                .await
                .expect("install");
            warm.push(ms(t.elapsed()));
        }
        println!(
            "{id} | {:.0} KiB | {:.0} KiB | {} | {} | {}",
            file.len() as f64 / 1024.0,
            artifact as f64 / 1024.0,
            summary(&mut verify),
            summary(&mut cold),
            summary(&mut warm)
        );
    }
}

/// One call as a new run makes it: context, new session, `describe`.
#[derive(Debug, Clone)]
struct Call {
    start: Instant,
    end: Instant,
    version: String,
}

fn longest_within(calls: &[Call], from: Instant, to: Instant) -> (Duration, usize) {
    let overlapping: Vec<&Call> = calls
        .iter()
        .filter(|c| c.end >= from && c.start <= to)
        .collect();
    (
        overlapping
            .iter()
            .map(|c| c.end - c.start)
            .max()
            .unwrap_or_default(),
        overlapping.len(),
    )
}

async fn upgrade_pause(upgrades: usize) {
    println!("== hot-upgrade pause (load {})", load_average());
    let tmp = tempfile::tempdir().expect("temp dir");
    let host = Arc::new(fresh_host(tmp.path(), None).await);
    let v1 = std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED).expect("v1 built");
    let v2 = std::fs::read(proofpix_plugin_artifacts::TEST_WELL_BEHAVED_V2).expect("v2 built");
    host.install_plugin(&v1, &grant_all(true), "bench")
        .await
        .expect("install v1");
    host.create_integration(
        IntegrationSpec {
            id: "wb".into(),
            plugin: "well-behaved".into(),
            config: BTreeMap::from([("upgrade_check".to_string(), "pass".to_string())]),
            secrets: BTreeMap::from([("token".to_string(), Secret::new("t"))]),
            ..IntegrationSpec::default()
        },
        "bench",
    )
    .await
    .expect("integration");

    let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for _ in 0..2 {
        let (host, calls, failures, stop) =
            (host.clone(), calls.clone(), failures.clone(), stop.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                let r = async {
                    let (plugin, ctx) =
                        host.context("wb", false).await.map_err(|e| e.to_string())?;
                    let mut s = plugin.session(&ctx).await.map_err(|e| e.to_string())?;
                    s.describe().await.map_err(|e| e.to_string())
                }
                .await;
                let end = Instant::now();
                match r {
                    Ok(info) => calls.lock().expect("calls").push(Call {
                        start,
                        end,
                        version: info.version,
                    }),
                    Err(e) => {
                        eprintln!("call failed: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut quiet_max = Vec::new();
    let mut quiet_median = Vec::new();
    let mut during_max = Vec::new();
    let mut install_ms = Vec::new();
    let mut all_switched = true;
    println!(
        "upgrade | install ms | calls overlapping | longest overlapping ms | longest in the quiet window before ms | median call in that window ms"
    );
    for i in 0..upgrades {
        let (file, to) = if i % 2 == 0 {
            (&v2, "2.0.0")
        } else {
            (&v1, "1.0.0")
        };
        // A quiet window first, as long as an install takes (1.5 s at least).
        let window = install_ms
            .last()
            .map_or(Duration::from_millis(1500), |m: &f64| {
                Duration::from_secs_f64((m / 1e3).max(1.5))
            });
        let q0 = Instant::now();
        tokio::time::sleep(window).await;
        let q1 = Instant::now();

        let t0 = Instant::now();
        let report = host
            .install_plugin(file, &grant_all(true), "bench")
            .await
            .expect("upgrade");
        let t1 = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(report.plugin.info().version, to);

        let snapshot = calls.lock().expect("calls").clone();
        let (quiet, _) = longest_within(&snapshot, q0, q1);
        let mut quiet_calls: Vec<f64> = snapshot
            .iter()
            .filter(|c| c.start >= q0 && c.end <= q1)
            .map(|c| ms(c.end - c.start))
            .collect();
        let (during, n) = longest_within(&snapshot, t0, t1);
        let switched = snapshot
            .iter()
            .filter(|c| c.start > t1)
            .all(|c| c.version == to);
        all_switched &= switched;
        println!(
            "{} -> {to} | {:.1} | {n} | {:.2} | {:.2} | {}",
            report.upgraded_from.as_deref().unwrap_or("?"),
            ms(t1 - t0),
            ms(during),
            ms(quiet),
            summary(&mut quiet_calls)
        );
        install_ms.push(ms(t1 - t0));
        during_max.push(ms(during));
        quiet_max.push(ms(quiet));
        quiet_median.push(median(&mut quiet_calls));
    }
    println!(
        "install (upgrade) ms: {}; longest call overlapping an install ms: {}; longest call in a quiet window ms: {}; median call ms: {}",
        summary(&mut install_ms),
        summary(&mut during_max),
        summary(&mut quiet_max),
        summary(&mut quiet_median)
    );
    println!("every call started after an install saw the new version: {all_switched}");

    // The swap alone: the other version loaded (compiled) first.
    let mut swap_lock = Vec::new();
    let mut swap_max = Vec::new();
    for i in 0..upgrades {
        let current = host
            .plugin("well-behaved")
            .expect("plugin")
            .info()
            .version
            .clone();
        let file = if current == "1.0.0" { &v2 } else { &v1 };
        let next = host.runtime().load(file).await.expect("load");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t0 = Instant::now();
        let held = host.swap_plugin(next);
        let t1 = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let snapshot = calls.lock().expect("calls").clone();
        let (longest, n) = longest_within(&snapshot, t0, t1);
        if i == 0 {
            println!("swap alone: write lock held, then the longest call overlapping the swap");
        }
        println!(
            "   swap {}: lock held {:.1} µs; {n} calls overlapping, longest {:.2} ms",
            i + 1,
            held.as_secs_f64() * 1e6,
            ms(longest)
        );
        swap_lock.push(held.as_secs_f64() * 1e6);
        swap_max.push(ms(longest));
    }
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.await.expect("caller");
    }
    let total = calls.lock().expect("calls").len();
    println!(
        "swap alone: lock held µs {}; longest overlapping call ms {}",
        summary(&mut swap_lock),
        summary(&mut swap_max)
    );
    println!(
        "calls made: {total}, failed: {} (load {})",
        failures.load(Ordering::Relaxed),
        load_average()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let installs = args.first().copied().unwrap_or(5).max(1);
    let upgrades = args.get(1).copied().unwrap_or(6).max(1);
    install_times(installs).await;
    upgrade_pause(upgrades).await;
}
