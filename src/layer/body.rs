//! The response body: the inner service's, or a refusal's.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project::pin_project;

/// Either the inner service's body or the body of a refusal rendered by keygate.
#[pin_project(project = ResponseBodyProj)]
#[derive(Debug)]
pub enum ResponseBody<B> {
    /// The inner service's body.
    Inner(#[pin] B),
    /// A refusal's body.
    Refusal(Option<Bytes>),
}

impl<B> ResponseBody<B> {
    pub(crate) fn refusal(bytes: Bytes) -> Self {
        Self::Refusal((!bytes.is_empty()).then_some(bytes))
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Inner(body) => body.poll_frame(cx),
            ResponseBodyProj::Refusal(bytes) => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Inner(body) => body.is_end_stream(),
            ResponseBody::Refusal(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Inner(body) => body.size_hint(),
            ResponseBody::Refusal(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
