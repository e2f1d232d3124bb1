//! `Url` images: fetched over HTTP(S) with a timeout and a size cap, from hosts the configuration allows.
//! By default any public host may be fetched and private, loopback and link-local addresses are refused
//! (a server that fetches what callers name must not become a door into its own network). The host is
//! resolved and checked once, and the connection goes to exactly that address (no DNS rebinding); redirects
//! are not followed. No proxy from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) is used: a
//! proxy would resolve the host again, past the check. A proxy is used only when the configuration names
//! one (`url_proxy`); the host is still resolved and checked here first, and what the proxy then connects
//! to is its own business.

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
    /// The proxy downloads go through (`url_proxy`); none (not even one from the environment) when unset.
    pub proxy: Option<String>,
}

pub struct Downloader {
    policy: UrlPolicy,
}

fn download_error(message: String) -> FaceError {
    FaceError::Download(message)
}

impl Downloader {
    pub fn new(policy: UrlPolicy) -> Self {
        if let Some(proxy) = &policy.proxy
            && let Err(e) = reqwest::Proxy::all(proxy)
        {
            tracing::error!(url_proxy = %proxy, error = %e, "url_proxy is not a proxy URL: Url images cannot be fetched");
        }
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

        let builder = reqwest::Client::builder()
            .timeout(self.policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host.trim_start_matches('[').trim_end_matches(']'), address);
        let builder = match &self.policy.proxy {
            Some(proxy) => builder.proxy(
                reqwest::Proxy::all(proxy)
                    .map_err(|e| FaceError::Unavailable(format!("url_proxy `{proxy}`: {e}")))?,
            ),
            None => builder.no_proxy(),
        };
        let client = builder
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

/// Globally routable. IPv4: not loopback, private, link-local, shared (CGNAT), unspecified, "this network",
/// multicast, documentation, benchmarking (198.18.0.0/15) or reserved (240.0.0.0/4, the broadcast address
/// included). IPv6: inside global unicast (2000::/3, which leaves out loopback, unique-local, link-local,
/// site-local, multicast, IPv4-compatible `::a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d` and NAT64
/// 64:ff9b::/96) and not 6to4 (2002::/16), Teredo (2001::/32) or documentation (2001:db8::/32): those
/// forms carry an IPv4 address a relay or translator would connect to. An IPv4-mapped `::ffff:a.b.c.d` is
/// its IPv4 address.
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
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let global_unicast = (s[0] & 0xe000) == 0x2000;
            let six_to_four = s[0] == 0x2002;
            let teredo = s[0] == 0x2001 && s[1] == 0;
            let documentation = s[0] == 0x2001 && s[1] == 0x0db8;
            global_unicast && !(six_to_four || teredo || documentation)
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
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    fn refused(addresses: &[&str]) {
        for a in addresses {
            assert!(!is_public(a.parse().unwrap()), "{a} should be refused");
        }
    }

    #[test]
    fn ipv4_compatible_addresses_are_refused() {
        refused(&["::127.0.0.1", "::10.0.0.1", "::8.8.8.8", "::"]);
    }

    #[test]
    fn ipv4_translated_addresses_are_refused() {
        refused(&[
            "::ffff:0:127.0.0.1",
            "::ffff:0:169.254.169.254",
            "::ffff:0:8.8.8.8",
        ]);
    }

    #[test]
    fn nat64_addresses_are_refused() {
        refused(&[
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::8.8.8.8",
            "64:ff9b:1::1",
        ]);
    }

    #[test]
    fn six_to_four_and_teredo_addresses_are_refused() {
        refused(&[
            "2002:7f00:1::1",
            "2002:0a00:0001::",
            "2002:808:808::1",
            "2001:0:4136:e378::1",
        ]);
    }

    #[test]
    fn site_local_and_documentation_ipv6_are_refused() {
        refused(&["fec0::1", "feff::1", "2001:db8::1", "ff02::1", "100::1"]);
    }

    #[test]
    fn benchmarking_and_reserved_ipv4_are_refused() {
        refused(&[
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "250.1.2.3",
            "255.255.255.255",
        ]);
        for public in ["198.17.255.255", "198.20.0.1", "223.1.2.3"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
