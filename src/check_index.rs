//! `iai-server check-index --data-dir D`: does the search index of the server running on `D` equal a
//! rebuild from `D`'s database? Also checks the database itself (SQLite's quick check and foreign keys).
//!
//! The server's digest (`GET /index/digest`) is of a moment no write was half-way through. The rebuild reads
//! the database (read-only, beside the server) between two such digests; when the two digests differ a write
//! landed meanwhile and the comparison is repeated, so a busy server is compared at a quiet moment rather
//! than reported as broken. The digest needs the operator token, which this tool derives from the data
//! directory's `url.key` (so it runs as a user who can read the data directory), and it never goes through
//! a proxy (`HTTP_PROXY` and the like are ignored: the token is for the server only).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::index::{Digest, Indexes};

/// Where a running server records its address in its data directory (for `iai-server check-index`).
pub const SERVER_FILE: &str = "server.json";

/// How the check ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server's index equals the rebuild (or, with no server, the database rebuilds cleanly).
    Consistent,
    /// They differ, or the database is damaged; the lines say where.
    Inconsistent(Vec<String>),
}

/// Run the check; `server` overrides the address the server recorded in the data directory. With
/// `database_url` (replicas sharing a PostgreSQL database), the rebuild reads that database and every live
/// replica (seen in `replicas` within the last minute) is compared with it, unless `server` names one.
pub async fn run(
    data_dir: &Path,
    server: Option<String>,
    database_url: Option<String>,
) -> anyhow::Result<Verdict> {
    let source = match database_url {
        Some(url) => Source::Shared(url),
        None => Source::Dir(data_dir.to_owned()),
    };
    let mut problems = source.problems()?;
    let servers = match (server, &source) {
        (Some(address), _) => vec![address],
        (None, Source::Shared(url)) => crate::store::live_replicas(url)
            .await?
            .into_iter()
            .map(|(_, address)| address)
            .collect(),
        (None, Source::Dir(dir)) => recorded_server(dir).into_iter().collect(),
    };
    if servers.is_empty() {
        let rebuilt = source.rebuild().await?;
        println!(
            "no server is running on {}; the database rebuilds into {}",
            source.describe(),
            summary(&rebuilt)
        );
        return Ok(verdict(problems));
    }
    let token = source.operator_token().await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()?;
    for server in servers {
        problems.extend(compare_server(&source, &client, &server, &token).await?);
    }
    Ok(verdict(problems))
}

/// Where the database is.
enum Source {
    Dir(std::path::PathBuf),
    Shared(String),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Dir(dir) => dir.display().to_string(),
            Source::Shared(_) => "the shared database".into(),
        }
    }

    /// The database's own checks (SQLite: page structure and foreign keys; PostgreSQL enforces its
    /// constraints on every write).
    fn problems(&self) -> anyhow::Result<Vec<String>> {
        match self {
            Source::Dir(dir) => database_problems(dir),
            Source::Shared(_) => Ok(Vec::new()),
        }
    }

    /// A rebuild of every group's index from one consistent read of the database.
    async fn rebuild(&self) -> anyhow::Result<Digest> {
        match self {
            Source::Dir(dir) => {
                crate::store::read_beside(dir, |view| Ok(Indexes::load(view)?.digest()))
            }
            Source::Shared(url) => {
                crate::store::read_shared(url, |view| Ok(Indexes::load(view)?.digest())).await
            }
        }
    }

    async fn operator_token(&self) -> anyhow::Result<String> {
        match self {
            Source::Dir(dir) => crate::jobs::links::operator_token(dir),
            Source::Shared(url) => {
                let key = crate::store::shared_file(url, crate::jobs::links::KEY_FILE)
                    .await?
                    .context("the shared database holds no link key (no replica has started)")?;
                Ok(crate::jobs::links::operator_token_of(&key))
            }
        }
    }
}

/// The differences between the index of the server at `server` and a rebuild, read between two equal
/// digests of the server.
async fn compare_server(
    source: &Source,
    client: &reqwest::Client,
    server: &str,
    token: &str,
) -> anyhow::Result<Vec<String>> {
    let url = digest_url(server);
    for attempt in 1..=5 {
        let before = fetch_digest(client, &url, token).await?;
        let rebuilt = source.rebuild().await?;
        let after = fetch_digest(client, &url, token).await?;
        if before != after {
            // A write landed while the database was read: try again.
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            continue;
        }
        let differences: Vec<String> = compare(&after, &rebuilt)
            .into_iter()
            .map(|d| format!("{d} [server {server}]"))
            .collect();
        if differences.is_empty() {
            println!(
                "the index of the server at {server} equals a rebuild from {}: {}",
                source.describe(),
                summary(&rebuilt)
            );
        }
        return Ok(differences);
    }
    bail!("the server at {server} kept changing during 5 attempts; run the check at a quieter time")
}

fn verdict(problems: Vec<String>) -> Verdict {
    if problems.is_empty() {
        Verdict::Consistent
    } else {
        Verdict::Inconsistent(problems)
    }
}

/// The database's own checks (for SQLite: page structure and foreign keys).
fn database_problems(data_dir: &Path) -> anyhow::Result<Vec<String>> {
    Ok(crate::store::database_problems(data_dir)?
        .into_iter()
        .map(|line| format!("database: {line}"))
        .collect())
}

/// The address in `server.json`, when that server process is still alive.
fn recorded_server(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(SERVER_FILE)).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pid = doc["pid"].as_u64()?;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    doc["address"].as_str().map(str::to_owned)
}

fn digest_url(server: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = if base.starts_with("http://") || base.starts_with("https://") {
        base.to_owned()
    } else {
        format!("http://{}", base.replacen("0.0.0.0", "127.0.0.1", 1))
    };
    format!("{base}/index/digest")
}

async fn fetch_digest(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Digest> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    Ok(serde_json::from_value(doc["groups"].clone())?)
}

fn compare(live: &Digest, rebuilt: &Digest) -> Vec<String> {
    let mut out = Vec::new();
    for (group, want) in rebuilt {
        match live.get(group) {
            None => out.push(format!(
                "group {group}: in the database ({} faces) but not in the server's index",
                want.faces
            )),
            Some(have) if have != want => out.push(format!(
                "group {group}: the server's index holds {} faces of {} persons, the database {} faces \
                 of {} persons{}",
                have.faces,
                have.persons,
                want.faces,
                want.persons,
                if have.faces == want.faces && have.persons == want.persons {
                    " (same counts, different vectors or owners)"
                } else {
                    ""
                }
            )),
            Some(_) => {}
        }
    }
    for group in live.keys().filter(|g| !rebuilt.contains_key(*g)) {
        out.push(format!(
            "group {group}: in the server's index but not in the database"
        ));
    }
    out
}

fn summary(digest: &Digest) -> String {
    let faces: usize = digest.values().map(|g| g.faces).sum();
    let persons: usize = digest.values().map(|g| g.persons).sum();
    format!(
        "{} groups, {faces} faces, {persons} person features",
        digest.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::GroupDigest;

    fn digest(faces: usize, sha: &str) -> GroupDigest {
        GroupDigest {
            version: "3.0".into(),
            faces,
            persons: 1,
            sha256: sha.into(),
        }
    }

    #[test]
    fn differences_name_the_group_and_what_differs() {
        let rebuilt: Digest = [("a".into(), digest(2, "x")), ("b".into(), digest(1, "y"))].into();
        let live: Digest = [("a".into(), digest(2, "z")), ("c".into(), digest(0, "w"))].into();
        let found = compare(&live, &rebuilt);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("group a") && found[0].contains("different vectors"));
        assert!(found[1].contains("group b") && found[1].contains("not in the server"));
        assert!(found[2].contains("group c") && found[2].contains("not in the database"));
        assert!(compare(&rebuilt, &rebuilt).is_empty());
        assert_eq!(
            digest_url("0.0.0.0:8080"),
            "http://127.0.0.1:8080/index/digest"
        );
    }
}
