//! The HTTPS client to the upstream: rustls with the web PKI roots (or a given CA), HTTP/2 where the
//! upstream offers it, plain HTTP for a local upstream.

use std::time::Duration;

use cache_discord::DiscordBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::Error;

/// How long a connection to the upstream may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper-util's client over rustls.
pub(crate) type UpstreamClient = Client<HttpsConnector<HttpConnector>, DiscordBody>;

/// A client trusting `ca_pem`'s authorities, or the web PKI roots.
pub(crate) fn upstream_client(ca_pem: Option<&[u8]>) -> Result<UpstreamClient, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_pem {
        None => builder.with_webpki_roots(),
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in rustls_pemfile::certs(&mut &pem[..]) {
                let certificate = certificate.map_err(|error| Error::Tls(error.to_string()))?;
                roots
                    .add(certificate)
                    .map_err(|error| Error::Tls(error.to_string()))?;
            }
            if roots.is_empty() {
                return Err(Error::Tls("the CA file holds no certificate".to_owned()));
            }
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
    };
    // An upstream that does not answer the connection is a 502 soon, not a request hung for the
    // kernel's minutes.
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector))
}
