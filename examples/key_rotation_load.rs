//! Load for `bench/key_rotation.sh`: workers request client_credentials access tokens, one
//! client per algorithm, and verify each against a JWKS cached as HTTP caching allows
//! (refetched when its `max-age` has passed, never because of an unknown `kid`). Verification
//! uses the `openidconnect` crate, not the provider's code. Prints the counts at the end.
//!
//! Usage: key_rotation_load BASE_URL SECONDS WORKERS CLIENT_ID:SECRET:ALG...

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::JsonWebKey;
use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

struct Jwks {
    keys: Value,
    fetched: Instant,
    max_age: Duration,
}

#[derive(Default)]
struct Counts {
    verified: AtomicU64,
    failed: AtomicU64,
    token_errors: AtomicU64,
    jwks_fetches: AtomicU64,
}

async fn fetch(http: &reqwest::Client, base: &str) -> Result<Jwks, String> {
    let r = http.get(format!("{base}/jwks")).send().await.map_err(|e| e.to_string())?;
    let max_age = r
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse::<u64>().ok()))
        .ok_or("JWKS without max-age")?;
    let keys = r.json().await.map_err(|e| e.to_string())?;
    Ok(Jwks { keys, fetched: Instant::now(), max_age: Duration::from_secs(max_age) })
}

fn verify(jwks: &Value, jwt: &str) -> Result<String, String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, s] = parts[..] else { return Err("not a JWS".into()) };
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let (alg, kid) = (header["alg"].as_str().unwrap_or(""), header["kid"].as_str().unwrap_or(""));
    let key = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| format!("kid {kid} not in the cached JWKS"))?;
    let jwk: CoreJsonWebKey = serde_json::from_value(key.clone()).map_err(|e| e.to_string())?;
    let core = match alg {
        "RS256" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        "PS256" => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        "ES256" => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        "EdDSA" => CoreJwsSigningAlgorithm::EdDsa,
        other => return Err(format!("unexpected alg {other}")),
    };
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|e| e.to_string())?;
    jwk.verify_signature(&core, format!("{h}.{p}").as_bytes(), &sig).map_err(|e| format!("{kid}: {e:?}"))?;
    Ok(kid.to_string())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (base, secs, workers) = (args[1].clone(), args[2].parse::<u64>().unwrap(), args[3].parse::<usize>().unwrap());
    let clients: Vec<(String, String, String)> = args[4..]
        .iter()
        .map(|c| {
            let mut it = c.splitn(3, ':');
            (it.next().unwrap().into(), it.next().unwrap().into(), it.next().unwrap().into())
        })
        .collect();
    let http = reqwest::Client::new();
    let jwks = Arc::new(Mutex::new(fetch(&http, &base).await.expect("first JWKS")));
    let counts = Arc::new(Counts::default());
    counts.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    let kids = Arc::new(std::sync::Mutex::new(BTreeMap::<String, (String, u64)>::new()));
    let end = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, base, jwks, counts, kids) = (http.clone(), base.clone(), jwks.clone(), counts.clone(), kids.clone());
        let (id, secret, alg) = clients[w % clients.len()].clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let r = http
                    .post(format!("{base}/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let token = match r {
                    Ok(r) if r.status().is_success() => {
                        r.json::<Value>().await.ok().and_then(|v| v["access_token"].as_str().map(str::to_owned))
                    }
                    _ => None,
                };
                let Some(token) = token else {
                    counts.token_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let keys = {
                    let mut cached = jwks.lock().await;
                    if cached.fetched.elapsed() >= cached.max_age
                        && let Ok(fresh) = fetch(&http, &base).await
                    {
                        *cached = fresh;
                        counts.jwks_fetches.fetch_add(1, Ordering::Relaxed);
                    }
                    cached.keys.clone()
                };
                match verify(&keys, &token) {
                    Ok(kid) => {
                        counts.verified.fetch_add(1, Ordering::Relaxed);
                        kids.lock().unwrap().entry(kid).or_insert((alg.clone(), 0)).1 += 1;
                    }
                    Err(e) => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("verification failed: {e}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kids = kids.lock().unwrap();
    println!("signing keys seen: {}", kids.len());
    for (kid, (alg, n)) in kids.iter() {
        println!("  {alg:<5} {kid}  {n} tokens");
    }
    println!("JWKS fetches: {}", counts.jwks_fetches.load(Ordering::Relaxed));
    println!("token request errors: {}", counts.token_errors.load(Ordering::Relaxed));
    println!("tokens verified: {}", counts.verified.load(Ordering::Relaxed));
    println!("verification failures: {}", counts.failed.load(Ordering::Relaxed));
    if counts.failed.load(Ordering::Relaxed) > 0 || counts.token_errors.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
