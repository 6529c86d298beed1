//! Cancelling with Ctrl-C. The REPL's listener sets one flag; the REPL
//! drops the running statement's future when it sees it, and synchronous
//! hooks that wait on I/O run through [`run_cancellable`], which gives up
//! as soon as the flag is set (the abandoned work ends on its own thread).

use std::sync::atomic::{AtomicBool, Ordering};

use super::ShellError;

/// Runs a future to completion on a private thread and runtime: for the
/// synchronous hooks (table functions, tab completion) that need async I/O
/// while the main runtime is busy planning or reading a line.
pub fn run_blocking<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime").block_on(f))
            .join()
            .expect("shell helper thread panicked")
    })
}

/// Set by the REPL's Ctrl-C listener; cleared before each input.
static CANCEL: AtomicBool = AtomicBool::new(false);

/// Asks the running statement to stop (Ctrl-C in the REPL).
pub fn request_cancel() {
    CANCEL.store(true, Ordering::SeqCst);
}

pub fn cancel_requested() -> bool {
    CANCEL.load(Ordering::SeqCst)
}

pub fn clear_cancel() {
    CANCEL.store(false, Ordering::SeqCst);
}

/// Like [`run_blocking`] for synchronous hooks that open tables (slow on
/// S3, or stuck): returns [`ShellError::Cancelled`] as soon as Ctrl-C is
/// pressed, leaving the work to finish on its thread.
pub fn run_cancellable<F>(f: F) -> Result<F::Output, ShellError>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    use std::sync::mpsc::RecvTimeoutError;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("dp-sql-open".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let _ = match rt {
                Ok(rt) => tx.send(Ok(rt.block_on(f))),
                Err(e) => tx.send(Err(e.to_string())),
            };
        })
        .map_err(|e| ShellError::Other(format!("starting a thread: {e}")))?;
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => return Err(ShellError::Other(format!("starting a runtime: {e}"))),
            Err(RecvTimeoutError::Timeout) if cancel_requested() => return Err(ShellError::Cancelled),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(ShellError::Other("a helper thread of dp sql stopped unexpectedly".into())),
        }
    }
}
