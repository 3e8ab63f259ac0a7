//! The lean AWS feature set brings no default HTTPS client: `aws::https_client` is the one
//! the clients use, with the system's trust store. Proved offline: the real binary talks to
//! a TLS server of this test on 127.0.0.1, whose certificate a CA generated here signs. The
//! CA is trusted through `SSL_CERT_FILE` (read by the same trust-store loader as the
//! system's certificates): with it the answer comes through; without it the handshake is
//! refused, so the trust store is really consulted.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::support::{TempDir, aws_test_credentials, root, xtask_in};

/// What the TLS server answers to everything: an Elastic Beanstalk error the client reads.
const ANSWER: &str = "<ErrorResponse xmlns=\"http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/\">\
<Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>answered over TLS</Message>\
</Error><RequestId>tls-test</RequestId></ErrorResponse>";

/// A TLS server on 127.0.0.1 with a certificate for that address signed by a new CA.
/// Returns its address and the CA in PEM.
fn tls_server() -> (String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], private)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let service = service_fn(|_request| async {
                        hyper::Response::builder()
                            .status(400)
                            .header("Content-Type", "text/xml")
                            .body(Full::new(Bytes::from_static(ANSWER.as_bytes())))
                    });
                    let connection = hyper::server::conn::http1::Builder::new();
                    let _ = connection.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
    });
    (addr, ca.pem())
}

#[test]
fn the_configured_https_client_completes_a_tls_handshake_with_the_trust_store() {
    let (addr, ca) = tls_server();
    let dir = TempDir::new("tls-ca");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let endpoint = format!("https://{addr}");
    let mut env = aws_test_credentials();
    env.push(("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", endpoint));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let trusted = [env.clone(), vec![("SSL_CERT_FILE", ca_file.to_str().unwrap())]].concat();

    let run = xtask_in(&root(), &["status", "staging"], &trusted);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_contains("InvalidParameterValue: answered over TLS");

    let run = xtask_in(&root(), &["status", "staging"], &env);
    assert_eq!(run.code, Some(1), "{}", run.output);
    run.assert_lacks("answered over TLS");
    assert!(run.output.to_lowercase().contains("certificate"), "{}", run.output);
}
