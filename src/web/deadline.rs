//! A request body that must arrive whole within a time from its request's head. hyper bounds
//! the head (`WEB_HEADER_TIMEOUT`) but not the body, and a connection answering a request
//! outlives even its lifetime (the answer comes first): one byte now and then held a slot
//! for ever. A form arrives in milliseconds and an upload is at most `web_max_body`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

pub(super) struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub(super) fn new(inner: B, within: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(within)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub(super) struct TooSlow;

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(TooSlow.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body whose frames come when the test sends them.
    struct Trickle(tokio::sync::mpsc::Receiver<Bytes>);

    impl Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0
                .poll_recv(cx)
                .map(|bytes| bytes.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_trickling_past_its_deadline_fails_and_a_prompt_one_arrives() {
        let (send, receive) = tokio::sync::mpsc::channel(8);
        let mut body = DeadlineBody::new(Trickle(receive), Duration::from_secs(30));
        let feeder = tokio::spawn(async move {
            for _ in 0..100 {
                if send.send(Bytes::from_static(b"x")).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        });
        let mut received = 0;
        let error = loop {
            match body.frame().await {
                Some(Ok(_)) => received += 1,
                Some(Err(error)) => break error,
                None => panic!("the trickle ended"),
            }
        };
        assert!(error.is::<TooSlow>(), "{error}");
        assert_eq!(
            received, 3,
            "frames at 0, 10 and 20 s; the deadline at 30 s"
        );
        feeder.abort();

        let (send, receive) = tokio::sync::mpsc::channel(8);
        send.send(Bytes::from_static(b"csrf=x"))
            .await
            .expect("send");
        drop(send);
        let body = DeadlineBody::new(Trickle(receive), Duration::from_secs(30));
        let whole = body.collect().await.expect("in time").to_bytes();
        assert_eq!(&whole[..], b"csrf=x");
    }
}
