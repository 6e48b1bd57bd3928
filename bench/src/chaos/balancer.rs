//! A small TCP load balancer for the `chaos` scenario: accepts on a loopback
//! port, hands each connection to the next live backend (round-robin,
//! skipping dead ones and backends that refuse), splices bytes both ways,
//! and cuts a random connection on demand (a mobile network drop).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};

use super::rng::Rng;

/// How a cut ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Both sides reset at once (RST): the server sees the loss immediately.
    Reset,
    /// The client side is reset, the server side is left open and silent
    /// (no FIN, nothing read or written) until the server's own ping timeout
    /// notices, as when a phone loses its network.
    Silent,
}

/// How long a silently cut connection's server side is held open at most.
const SILENT_HOLD: Duration = Duration::from_secs(60);

/// A spliced connection the balancer can cut.
#[derive(Debug)]
struct Spliced {
    /// Ends the splice with the given kind of cut.
    cut: oneshot::Sender<Cut>,
    /// The splice task (aborted at shutdown).
    task: AbortHandle,
}

/// State shared by the accept loop, the splice tasks and the fault driver.
#[derive(Debug, Default)]
struct Inner {
    /// Backend addresses by node index; `None` while a node is down.
    backends: RefCell<Vec<Option<SocketAddr>>>,
    /// Round-robin position.
    next: Cell<usize>,
    /// Live spliced connections by id (removed when their task ends).
    conns: RefCell<HashMap<u64, Spliced>>,
    /// Id of the next connection.
    next_id: Cell<u64>,
    /// Server sides of silently cut connections, held until they time out.
    held: RefCell<Vec<AbortHandle>>,
    /// Client connections dropped because no backend accepted them.
    refused: Cell<u64>,
}

/// The balancer: an accept loop on `127.0.0.1:<port>` (must run inside a
/// `LocalSet`); every task it spawned is aborted by [`Balancer::shutdown`].
#[derive(Debug)]
pub(crate) struct Balancer {
    /// Address clients connect to.
    pub(crate) addr: SocketAddr,
    /// Shared with the tasks.
    inner: Rc<Inner>,
    /// The accept loop.
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free loopback port in front of `backends`.
    pub(crate) async fn start(backends: Vec<SocketAddr>) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("balancer bind: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("balancer address: {e}"))?;
        let inner = Rc::new(Inner {
            backends: RefCell::new(backends.into_iter().map(Some).collect()),
            ..Inner::default()
        });
        let accept = tokio::task::spawn_local(accept_loop(listener, Rc::clone(&inner)));
        Ok(Self {
            addr,
            inner,
            accept,
        })
    }

    /// Sets (or clears, while the node is down) the address of node `index`.
    pub(crate) fn set_backend(&self, index: usize, addr: Option<SocketAddr>) {
        if let Some(slot) = self.inner.backends.borrow_mut().get_mut(index) {
            *slot = addr;
        }
    }

    /// Connections currently spliced.
    pub(crate) fn live(&self) -> usize {
        self.inner.conns.borrow().len()
    }

    /// Client connections dropped because no backend accepted them.
    pub(crate) fn refused(&self) -> u64 {
        self.inner.refused.get()
    }

    /// Cuts one random live connection; `false` when there is none.
    pub(crate) fn cut_random(&self, rng: &mut Rng, how: Cut) -> bool {
        let mut conns = self.inner.conns.borrow_mut();
        if conns.is_empty() {
            return false;
        }
        let pick = rng.below(conns.len() as u64) as usize;
        let Some(id) = conns.keys().nth(pick).copied() else {
            return false;
        };
        match conns.remove(&id) {
            Some(spliced) => spliced.cut.send(how).is_ok(),
            None => false,
        }
    }

    /// Stops accepting and drops every connection, held ones included.
    pub(crate) fn shutdown(&self) {
        self.accept.abort();
        for (_, spliced) in self.inner.conns.borrow_mut().drain() {
            spliced.task.abort();
        }
        for held in self.inner.held.borrow_mut().drain(..) {
            held.abort();
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(listener: TcpListener, inner: Rc<Inner>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let id = inner.next_id.get();
        inner.next_id.set(id + 1);
        let (cut_tx, cut_rx) = oneshot::channel();
        let task = tokio::task::spawn_local(splice(id, client, cut_rx, Rc::clone(&inner)));
        inner.conns.borrow_mut().insert(
            id,
            Spliced {
                cut: cut_tx,
                task: task.abort_handle(),
            },
        );
    }
}

/// Connects to the next live backend that accepts, trying each at most once.
async fn connect_backend(inner: &Inner) -> Option<TcpStream> {
    let candidates: Vec<SocketAddr> = {
        let backends = inner.backends.borrow();
        let n = backends.len();
        let start = inner.next.get();
        inner.next.set(start.wrapping_add(1));
        (0..n)
            .filter_map(|k| backends[(start + k) % n.max(1)])
            .collect()
    };
    for addr in candidates {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
        {
            return Some(stream);
        }
    }
    None
}

async fn splice(id: u64, mut client: TcpStream, cut: oneshot::Receiver<Cut>, inner: Rc<Inner>) {
    let Some(mut server) = connect_backend(&inner).await else {
        inner.refused.set(inner.refused.get() + 1);
        let _ = client.set_zero_linger();
        inner.conns.borrow_mut().remove(&id);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let how = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        how = cut => how.ok(),
    };
    inner.conns.borrow_mut().remove(&id);
    match how {
        // One side closed: the copy has already passed the close on.
        None => {}
        Some(Cut::Reset) => {
            let _ = client.set_zero_linger();
            let _ = server.set_zero_linger();
        }
        Some(Cut::Silent) => {
            let _ = client.set_zero_linger();
            drop(client);
            let hold = tokio::task::spawn_local(async move {
                tokio::time::sleep(SILENT_HOLD).await;
                drop(server);
            });
            let mut held = inner.held.borrow_mut();
            held.retain(|h| !h.is_finished());
            held.push(hold.abort_handle());
        }
    }
}
