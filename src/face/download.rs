//! `Url` images: fetched over HTTP(S) with a timeout and a size cap, from hosts the configuration allows.
//! By default any public host may be fetched and private, loopback and link-local addresses are refused
//! (a server that fetches what callers name must not become a door into its own network). The host is
//! resolved and checked once, and the connection goes to exactly that address (no DNS rebinding); redirects
//! are not followed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::FaceError;

#[derive(Debug, Clone)]
pub struct UrlPolicy {
    /// Allow private, loopback and link-local addresses (trusted networks, tests).
    pub allow_private: bool,
    /// When not empty, only these host names may be fetched.
    pub allowed_hosts: Vec<String>,
    pub timeout: Duration,
    /// Largest download: the raw size whose base64 is Tencent's 5 MB limit.
    pub max_bytes: usize,
}

pub struct Downloader {
    policy: UrlPolicy,
}

fn download_error(message: String) -> FaceError {
    FaceError::Download(message)
}

impl Downloader {
    pub fn new(policy: UrlPolicy) -> Self {
        Self { policy }
    }

    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FaceError> {
        let illegal =
            || FaceError::UrlIllegal(format!("The Url `{url}` is not a valid HTTP(S) address."));
        let parsed = reqwest::Url::parse(url).map_err(|_| illegal())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(illegal());
        }
        let host = parsed.host_str().ok_or_else(illegal)?.to_owned();
        if !self.policy.allowed_hosts.is_empty()
            && !self
                .policy
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&host))
        {
            return Err(download_error(format!(
                "Fetching images from `{host}` is not allowed by this server."
            )));
        }
        let port = parsed.port_or_known_default().ok_or_else(illegal)?;
        let address = self.resolve(&host, port).await?;

        let client = reqwest::Client::builder()
            .timeout(self.policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host.trim_start_matches('[').trim_end_matches(']'), address)
            .build()
            .map_err(|e| FaceError::Unavailable(format!("HTTP client: {e}")))?;
        let fetch_failed =
            |e: reqwest::Error| download_error(format!("Downloading the image failed: {e}"));
        let mut response = client.get(parsed).send().await.map_err(fetch_failed)?;
        if !response.status().is_success() {
            return Err(download_error(format!(
                "Downloading the image failed: HTTP {}.",
                response.status()
            )));
        }
        let too_big = || FaceError::ImageTooLarge;
        if response
            .content_length()
            .is_some_and(|n| n as usize > self.policy.max_bytes)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_failed)? {
            if body.len() + chunk.len() > self.policy.max_bytes {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, FaceError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| download_error(format!("Cannot resolve `{host}`: {e}")))?
            .collect();
        let allowed = addresses
            .iter()
            .find(|a| self.policy.allow_private || is_public(a.ip()));
        match (allowed, addresses.first()) {
            (Some(address), _) => Ok(*address),
            (None, Some(_)) => Err(download_error(format!(
                "`{host}` is a private, loopback or link-local address; this server does not fetch from those."
            ))),
            (None, None) => Err(download_error(format!("Cannot resolve `{host}`."))),
        }
    }
}

/// Globally routable: not loopback, private, link-local, shared (CGNAT), unspecified, multicast or documentation.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
