use clap::Parser;
use iai_server::check_index::{self, Verdict};
use iai_server::config::{AuditCommand, Cli, Command, Config};
use tracing_subscriber::EnvFilter;

/// mimalloc, told to give freed memory back to the system at once: glibc's allocator kept the hundreds of
/// megabytes that dropped request bodies had used, and mimalloc's default purges lazily, on the thread
/// that freed, so a blocking thread that decoded a large image and then idled kept it for 10 s
/// (tests/py/test_hostile.py measures both).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn purge_freed_memory_at_once() {
    // mimalloc's own `MIMALLOC_PURGE_DELAY` (ms), when an operator sets it, wins.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets a process-wide allocator option before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

const DEFAULT_LOG: &str = "info";

/// `iai-server audit export`: the SQLite trail of `data_dir`, or the shared database's.
async fn audit_export(
    data_dir: &std::path::Path,
    since: &str,
    until: Option<&str>,
    database_url: Option<&str>,
) -> anyhow::Result<u64> {
    use iai_server::audit::export;
    use iai_server::store::audit::Location;
    let since = export::parse_time(since)?;
    let until = until.map(export::parse_time).transpose()?;
    let location = match database_url {
        Some(url) => Location::database(url)?,
        None => Location::File(data_dir.to_owned()),
    };
    // The trail's reads block: off the runtime that drives the database's connections.
    tokio::task::spawn_blocking(move || {
        export::export(&location, since, until, &mut std::io::stdout().lock())
    })
    .await?
}

fn main() -> std::process::ExitCode {
    purge_freed_memory_at_once();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts");
    let code = runtime.block_on(serve_or_tool());
    // A stop during start-up leaves the index rebuild or model loading running: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn serve_or_tool() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_env("IAI_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
        )
        .init();
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::CheckIndex {
            data_dir,
            server,
            database_url,
        }) => {
            return match check_index::run(data_dir, server.clone(), database_url.clone()).await {
                Ok(Verdict::Consistent) => std::process::ExitCode::SUCCESS,
                Ok(Verdict::Inconsistent(problems)) => {
                    for problem in problems {
                        println!("MISMATCH {problem}");
                    }
                    std::process::ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("iai-server check-index: {e:#}");
                    std::process::ExitCode::from(2)
                }
            };
        }
        Some(Command::Healthcheck { url }) => return healthcheck(&cli, url.clone()).await,
        Some(Command::Calibrate {
            group,
            data_dir,
            database_url,
            json,
        }) => {
            return match calibrate(group, data_dir, database_url.as_deref()).await {
                Ok(report) => {
                    if *json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        print!("{}", report.to_text(group));
                    }
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("iai-server calibrate: {e:#}");
                    std::process::ExitCode::from(2)
                }
            };
        }
        Some(Command::Audit {
            command:
                AuditCommand::Export {
                    data_dir,
                    since,
                    until,
                    database_url,
                },
        }) => {
            let exported = audit_export(data_dir, since, until.as_deref(), database_url.as_deref());
            return match exported.await {
                Ok(n) => {
                    eprintln!("iai-server audit export: {n} calls");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("iai-server audit export: {e:#}");
                    std::process::ExitCode::from(2)
                }
            };
        }
        None => {}
    }
    let result = match Config::load(&cli) {
        Ok(config) => iai_server::run(config).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("iai-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `iai-server calibrate --group G`: the group's faces read from its database, measured off the runtime.
async fn calibrate(
    group: &str,
    data_dir: &std::path::Path,
    database_url: Option<&str>,
) -> anyhow::Result<iai_server::index::calibrate::Report> {
    use iai_server::index::calibrate;
    let wanted = group.to_owned();
    let load = move |view: &dyn iai_server::store::changes::StartView| {
        calibrate::load_group(view, &wanted)?
            .ok_or_else(|| anyhow::anyhow!("there is no group {wanted:?}"))
    };
    let faces = match database_url {
        Some(url) => iai_server::store::read_shared(url, load).await?,
        None => {
            let dir = data_dir.to_owned();
            tokio::task::spawn_blocking(move || iai_server::store::read_beside(&dir, load))
                .await??
        }
    };
    let threads = iai_server::admission::cores();
    Ok(tokio::task::spawn_blocking(move || calibrate::measure(&faces, threads)).await?)
}

/// `iai-server healthcheck`: 0 when `/ready` answers 200 (a container HEALTHCHECK needs no curl).
async fn healthcheck(cli: &Cli, url: Option<String>) -> std::process::ExitCode {
    let url = url.unwrap_or_else(|| {
        let listen = Config::load(cli).map_or_else(|_| "127.0.0.1:8080".into(), |c| c.listen);
        format!(
            "http://{}/ready",
            listen.replacen("0.0.0.0", "127.0.0.1", 1)
        )
    });
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build();
    let ready = match client {
        Ok(client) => client.get(&url).send().await,
        Err(e) => Err(e),
    };
    match ready {
        Ok(response) if response.status().is_success() => std::process::ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("{url}: {}", response.status());
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
