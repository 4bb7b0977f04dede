//! The `meridian` binary: parses the command line, loads the config and runs the node.

mod cli;

/// mimalloc rather than glibc malloc: allocation is a third of the proxy's userspace time,
/// and the load benchmark measured mimalloc cheaper per request (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use cli::{Cli, Command, ConfigAction};
use meridian::config::shared::Published;
use std::time::Duration;

/// How long `serve` waits for the cluster's shared configuration before starting on its own
/// file, and `config publish` for NATS.
const NATS_WAIT: Duration = Duration::from_secs(5);
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meridian: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Completions { shell } => {
            // Generated into memory (a Vec cannot fail to take bytes; clap_complete panics on
            // a failed write), then written out with the error reported, as for any output.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "meridian", &mut script);
            write_stdout(&script).context("cannot write the completion script")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Manpage => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .context("cannot render the man page")?;
            write_stdout(&page).context("cannot write the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => match meridian::config::load(&config) {
            Ok(rt) => {
                let zones = rt.dns.as_ref().map_or(0, |d| d.zones.len());
                println!(
                    "{}: ok ({} sites, {} regions, {zones} DNS zones)",
                    config.display(),
                    rt.sites.len(),
                    rt.regions.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!("{} error(s) in {}", errors.0.len(), config.display());
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Serve {
            config,
            upgrade,
            upgrade_sock,
        } => {
            let rt = match meridian::config::load(&config) {
                Ok(rt) => rt,
                Err(errors) => {
                    eprintln!("{errors}");
                    anyhow::bail!(
                        "{} has {} error(s); not starting",
                        config.display(),
                        errors.0.len()
                    );
                }
            };
            let (rt, shared) = with_shared_config(&config, rt);
            print_banner(&rt);
            let handover = meridian::node::Handover {
                upgrade,
                socket: upgrade_sock,
            };
            let server =
                meridian::node::build(rt, &handover, shared).context("cannot start the node")?;
            server.run_forever()
        }
        Command::Config {
            action: ConfigAction::Publish { file },
        } => publish(&file),
    }
}

/// With `[cluster] shared_config`, the node starts on the cluster's published configuration
/// merged into its own file; on its own file alone when none is published, NATS cannot be
/// reached, or the merged configuration is invalid (the node's watch reports that version
/// as refused, and applies the next good one).
fn with_shared_config(
    path: &std::path::Path,
    rt: meridian::config::Runtime,
) -> (meridian::config::Runtime, Option<Published>) {
    if !rt.cluster.shared_config {
        return (rt, None);
    }
    let fetched = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            runtime
                .block_on(meridian::cluster::config::fetch(
                    &rt.cluster,
                    &rt.node.name,
                    NATS_WAIT,
                ))
                .map_err(|e| e.to_string())
        });
    match fetched {
        Ok(Some(published)) => match meridian::config::shared::load_merged(path, &published.text) {
            Ok(merged) => {
                log::info!(
                    "starting on the shared configuration, revision {}",
                    published.revision
                );
                (merged, Some(published))
            }
            Err(errors) => {
                log::error!(
                    "shared configuration revision {} is invalid with {}; starting on the \
                         file alone:\n{errors}",
                    published.revision,
                    path.display()
                );
                (rt, None)
            }
        },
        Ok(None) => {
            log::info!("no shared configuration published yet; starting on the file alone");
            (rt, None)
        }
        Err(e) => {
            log::warn!("shared configuration: {e}; starting on the file alone");
            (rt, None)
        }
    }
}

/// `meridian config publish FILE`.
fn publish(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let rt = match meridian::config::load(file) {
        Ok(rt) => rt,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{} error(s) in {}; nothing published",
                errors.0.len(),
                file.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let (Some(cluster), false) = (&rt.cluster.name, rt.cluster.nats.is_empty()) else {
        anyhow::bail!(
            "{}: [cluster] needs a name and nats servers to publish to",
            file.display()
        );
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let shared = meridian::config::shared::shared_part(&text)
        .with_context(|| format!("{}: cannot take its shared part", file.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start an async runtime")?;
    let revision = runtime
        .block_on(meridian::cluster::config::publish(
            &rt.cluster,
            shared,
            NATS_WAIT,
        ))
        .with_context(|| format!("cannot publish to cluster {cluster:?}"))?;
    println!(
        "{}: published to cluster {cluster:?} as revision {revision} (sites, regions, dns, limits)",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Tells a new user what is listening and what to try.
fn print_banner(rt: &meridian::config::Runtime) {
    let Some(http) = rt.listen.http.first() else {
        return;
    };
    let host = rt
        .sites
        .first()
        .and_then(|s| s.hosts.first())
        .map_or("localhost", String::as_str);
    log::info!(
        "meridian {} node {:?} starting",
        env!("CARGO_PKG_VERSION"),
        rt.node.name
    );
    eprintln!(
        "\nMeridian is serving on http://{http} (admin on http://{}).",
        rt.listen.admin
    );
    eprintln!("Try:");
    eprintln!("  curl -si -H 'Host: {host}' http://{http}/            # twice: Cache-Status miss, then hit");
    eprintln!("  curl -si -H 'Host: {host}' http://{http}/api/echo    # uncached; shows X-Forwarded-For, Via, traceparent");
    eprintln!(
        "  curl -s http://{}/metrics | grep meridian_",
        rt.listen.admin
    );
    eprintln!("  curl -s http://{}/status\n", rt.listen.admin);
}
