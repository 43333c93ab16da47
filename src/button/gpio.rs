//! The real button: one line of the Linux GPIO character device (uAPI v2, through gpiocdev),
//! input with pull-up, active low (the button shorts the pin to ground), both edges.
//!
//! A missing chip or line, or a line another program holds, is logged once; the daemon goes
//! on and the request is retried with backoff, so the mail services never wait for a button.

use std::path::PathBuf;
use std::time::Duration;

use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, Value};
use gpiocdev::tokio::AsyncRequest;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::board::ButtonFacts;

const CONSUMER: &str = "letterbox";
const FIRST_RETRY: Duration = Duration::from_secs(2);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Sends the line's level (true = pressed) on every edge until shutdown.
pub async fn watch(facts: ButtonFacts, levels: mpsc::Sender<bool>, shutdown: CancellationToken) {
    let mut backoff = FIRST_RETRY;
    let mut reported: Option<String> = None;
    loop {
        let outcome = tokio::select! {
            outcome = follow(&facts, &levels) => outcome,
            () = shutdown.cancelled() => return,
        };
        let error = match outcome {
            Ok(()) => return, // nobody listens any more
            Err(error) => error,
        };
        if reported.as_deref() != Some(error.as_str()) {
            tracing::warn!(%error, chip = %facts.chip, line = facts.line, "button unavailable; retrying");
            reported = Some(error);
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(LAST_RETRY);
    }
}

/// Requests the line and forwards its edges. `Ok` when the receiver is gone.
async fn follow(facts: &ButtonFacts, levels: &mpsc::Sender<bool>) -> Result<(), String> {
    let (chip, offset) = locate(facts)?;
    let request = gpiocdev::Request::builder()
        .on_chip(&chip)
        .with_consumer(CONSUMER)
        .with_line(offset)
        .as_input()
        .as_active_low()
        .with_bias(Bias::PullUp)
        .with_edge_detection(EdgeDetection::BothEdges)
        .with_debounce_period(Duration::from_millis(5))
        .request()
        .map_err(|e| format!("{}: line {offset}: {e}", chip.display()))?;
    let value = request.value(offset).map_err(|e| e.to_string())?;
    tracing::info!(chip = %chip.display(), line = offset, "button ready");
    // A line that reads as pressed before anyone could have pressed it is a stuck or shorted
    // button (or a board without one): counting it would shut the appliance down 10 s after
    // every boot. It counts from its first real edge instead.
    if value == Value::Active {
        tracing::warn!(
            chip = %chip.display(),
            line = offset,
            "the button reads as held at start; ignored until it is released"
        );
    }
    let request = AsyncRequest::new(request);
    loop {
        let event = request
            .read_edge_event()
            .await
            .map_err(|e| format!("{}: line {offset}: {e}", chip.display()))?;
        if levels.send(event.kind == EdgeKind::Rising).await.is_err() {
            return Ok(());
        }
    }
}

/// The chip path and line offset: by line name if the board gives one, else by chip path
/// or label and offset.
fn locate(facts: &ButtonFacts) -> Result<(PathBuf, u32), String> {
    if let Some(name) = &facts.line_name
        && let Some(found) = gpiocdev::find_named_line(name)
    {
        return Ok((found.chip, found.info.offset));
    }
    if facts.chip.starts_with('/') {
        return Ok((PathBuf::from(&facts.chip), facts.line));
    }
    let chips = gpiocdev::chip::chips().map_err(|e| format!("no GPIO chips: {e}"))?;
    for path in chips {
        let label = gpiocdev::Chip::from_path(&path)
            .and_then(|chip| chip.info())
            .map(|info| info.label);
        if label.as_deref() == Ok(facts.chip.as_str()) {
            return Ok((path, facts.line));
        }
    }
    Err(format!("no GPIO chip labelled {:?}", facts.chip))
}
