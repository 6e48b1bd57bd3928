//! [`TestServer`]: an axum router served in-process on `127.0.0.1:0`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;

/// An HTTP server on an ephemeral loopback port, serving a router that can be
/// swapped while it runs ([`replace_router`](Self::replace_router)), e.g. to put
/// a fresh engine behind the same address after shutting the first one down.
///
/// Served with `TCP_NODELAY` and `ConnectInfo<SocketAddr>`, like the real binary.
/// The accept loop stops when this is dropped; open connections end with the
/// test's runtime.
pub(crate) struct TestServer {
    /// The bound address (`127.0.0.1:<port>`).
    addr: SocketAddr,
    /// The router each request is handed to (cloned per request, lock never held across `.await`).
    router: Arc<RwLock<Router>>,
    /// The accept loop.
    task: JoinHandle<()>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves `router` on it.
    pub(crate) async fn start(router: Router) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let current = Arc::new(RwLock::new(router));
        let shared = Arc::clone(&current);
        let app = Router::new().fallback(move |request: Request| {
            let router = shared.read().clone();
            async move {
                match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        });
        let listener =
            axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
                let _ = tcp.set_nodelay(true);
            });
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
                eprintln!("test server on {addr} stopped: {e}");
            }
        });
        TestServer {
            addr,
            router: current,
            task,
        }
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: the URL to give socket.io-client.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>{namespace}`, e.g. `/custom`.
    pub(crate) fn url_of(&self, namespace: &str) -> String {
        format!("http://{}{namespace}", self.addr)
    }

    /// Serves `router` for every request from now on (open connections stay
    /// with the router that accepted them).
    pub(crate) fn replace_router(&self, router: Router) {
        *self.router.write() = router;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
