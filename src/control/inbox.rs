//! The control loop's side of the command queue while it works: a stop is acted on at once,
//! everything else waits its turn (see the module comment of `control`).

use std::collections::VecDeque;
use std::future::Future;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Command, Envelope, QUEUE};
use crate::button::Press;
use crate::status::{Mode, Status};

/// The loop's side of the command queue, and what it holds back while it works.
pub(super) struct Inbox {
    pub(super) commands: mpsc::Receiver<Envelope>,
    /// Commands that came while the loop was busy, in order; at most `QUEUE` of them (then
    /// senders wait, as they do on the queue).
    pub(super) deferred: VecDeque<Envelope>,
    status: watch::Sender<Status>,
    shutdown: CancellationToken,
}

impl Inbox {
    pub(super) fn new(
        commands: mpsc::Receiver<Envelope>,
        status: watch::Sender<Status>,
        shutdown: CancellationToken,
    ) -> Inbox {
        Inbox {
            commands,
            deferred: VecDeque::new(),
            status,
            shutdown,
        }
    }

    /// Runs `work` (which may wait on the radio for most of a minute) to its end, meanwhile
    /// taking commands: a stop is acted on at once (see the module comment), the rest wait
    /// in `deferred`.
    pub(super) async fn while_busy<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        let mut queue_open = true;
        let mut stop_published = false;
        loop {
            tokio::select! {
                biased;
                output = &mut work => return output,
                envelope = self.commands.recv(),
                    if queue_open && self.deferred.len() < QUEUE => match envelope {
                    None => queue_open = false,
                    Some(Envelope::Command {
                        command: command @ (Command::Shutdown | Command::Press(Press::VeryLong)),
                        reply,
                    }) => {
                        tracing::info!(?command, "stopping without waiting for the work in hand");
                        stop_published = true;
                        publish_stopping(&self.status);
                        self.shutdown.cancel();
                        if let Some(reply) = reply {
                            let _ = reply.send(Mode::ShuttingDown);
                        }
                    }
                    Some(envelope) => self.deferred.push_back(envelope),
                },
                () = self.shutdown.cancelled(), if !stop_published => {
                    stop_published = true;
                    tracing::info!("the daemon is stopping; the radio ends its work first");
                    publish_stopping(&self.status);
                }
            }
        }
    }
}

/// Publishes "shutting down" (and no setup information) ahead of the loop's own last step.
fn publish_stopping(status: &watch::Sender<Status>) {
    status.send_modify(|s| {
        s.mode = Mode::ShuttingDown;
        s.setup_mode = false;
        s.setup = None;
    });
}
