//! Build N nodes on one network with the netns platform, then destroy them,
//! driving the `Platform` trait with the engine's concurrency (10 at once).
//!
//! `cargo bench --bench netns_lifecycle [-- NODES [PARALLELISM]] [-- --no-sandbox]`
//! (root). `--no-sandbox` makes nodes without the sandbox (capabilities,
//! seccomp, masked `/proc`, device rules), to measure what it costs; the
//! init, namespaces and overlay are the same.
//! Prints one line per phase and a final `total_seconds=S` line that
//! `benches/netns_vs_mininet.sh` reads.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tg::platform::netns::{NetnsOptions, NetnsPlatform};
use tg::platform::{
    CreateRequest, DeleteRequest, Interface, NetworkSpec, NodeSpec, Platform, SessionRef, Spec,
};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let nodes: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let sandbox = !std::env::args().any(|a| a == "--no-sandbox");
    let parallelism: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("error: the netns benchmark needs root: run it with sudo");
        std::process::exit(1);
    }
    if nodes == 0 || nodes > 60_000 {
        eprintln!("error: NODES must be between 1 and 60000");
        std::process::exit(1);
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let platform = Arc::new(NetnsPlatform::new(NetnsOptions {
        run_dir: tmp.path().join("run"),
        image_dir: tmp.path().join("images"),
        init: Some(env!("CARGO_BIN_EXE_tg-init").into()),
        sandbox,
        ..NetnsOptions::default()
    }));
    let privates: Arc<std::sync::Mutex<BTreeMap<String, serde_json::Value>>> = Arc::default();
    let session = SessionRef {
        name: "bench".into(),
        lineage: uuid::Uuid::new_v4().to_string(),
        testbed_dir: tmp.path().to_path_buf(),
        ssh_client_key: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let net = NetworkSpec {
        name: "lab".into(),
        cidr: "10.200.0.0/16".parse().expect("cidr"),
        gateway: Ipv4Addr::new(10, 200, 0, 1),
        nat: false,
        hosts: Vec::new(),
    };
    let specs: Vec<NodeSpec> = (0..nodes)
        .map(|i| NodeSpec {
            settings: Default::default(),
            host: None,
            hostname: format!("n-{i}"),
            image: "host".into(),
            cpus: None,
            memory_mib: None,
            labels: BTreeMap::new(),
            interfaces: vec![Interface {
                impair: Default::default(),
                network: "lab".into(),
                address: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 200, 0, 2)) + i),
                prefix_len: 16,
                gateway: net.gateway,
            }],
        })
        .collect();

    let result = rt.block_on(async {
        let start = Instant::now();
        create(&platform, &session, Spec::Network(net.clone())).await?;
        run_all(parallelism, specs.iter().cloned().map(Spec::Node), |spec| {
            let (p, s, privates) = (platform.clone(), session.clone(), privates.clone());
            async move {
                let key = match &spec {
                    Spec::Node(n) => n.hostname.clone(),
                    _ => String::new(),
                };
                let private = create(&p, &s, spec).await?;
                privates.lock().unwrap().insert(key, private);
                Ok(())
            }
        })
        .await?;
        let created = start.elapsed();
        let start = Instant::now();
        run_all(parallelism, specs.iter().cloned().map(Spec::Node), |spec| {
            let (p, s) = (platform.clone(), session.clone());
            let private = match &spec {
                Spec::Node(n) => privates.lock().unwrap().remove(&n.hostname),
                _ => None,
            }
            .unwrap_or_default();
            async move { delete(&p, &s, spec, private).await }
        })
        .await?;
        let nodes_gone = start.elapsed();
        delete(
            &platform,
            &session,
            Spec::Network(net.clone()),
            Default::default(),
        )
        .await?;
        let destroyed = start.elapsed();
        Ok::<(Duration, Duration, Duration), String>((created, nodes_gone, destroyed))
    });
    let leftovers = rt.block_on(platform.sweep(&session)).unwrap_or_default();
    match result {
        Ok((c, n, d)) => {
            println!(
                "netns: created {nodes} nodes on one network in {:.3} s ({parallelism} at once{})",
                c.as_secs_f64(),
                if sandbox { "" } else { ", no sandbox" }
            );
            println!(
                "netns: destroyed them in {:.3} s (nodes {:.3} s, then the network)",
                d.as_secs_f64(),
                n.as_secs_f64()
            );
            if !leftovers.is_empty() {
                println!("netns: sweep found leftovers: {leftovers:?}");
            }
            println!("total_seconds={:.3}", (c + d).as_secs_f64());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

async fn create(
    p: &NetnsPlatform,
    s: &SessionRef,
    spec: Spec,
) -> Result<serde_json::Value, String> {
    p.create(CreateRequest {
        session: s.clone(),
        address: String::new(),
        spec,
        deps: BTreeMap::new(),
        cancel: Default::default(),
        trace: Default::default(),
    })
    .await
    .map(|r| r.private)
    .map_err(|e| format!("{e} {}", e.detail.clone().unwrap_or_default()))
}

async fn delete(
    p: &NetnsPlatform,
    s: &SessionRef,
    spec: Spec,
    private: serde_json::Value,
) -> Result<(), String> {
    p.delete(DeleteRequest {
        session: s.clone(),
        address: String::new(),
        spec,
        private,
        deps: BTreeMap::new(),
        cancel: Default::default(),
        trace: Default::default(),
    })
    .await
    .map_err(|e| e.to_string())
}

/// Run `f` on every item, at most `limit` at once; the first error wins.
async fn run_all<I, F, Fut>(limit: usize, items: I, f: F) -> Result<(), String>
where
    I: Iterator<Item = Spec>,
    F: Fn(Spec) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let mut tasks = Vec::new();
    for item in items {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let fut = f(item);
        tasks.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}
