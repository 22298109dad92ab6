//! The protobuf codec of every generated client and server: prost's, with smaller buffers.
//!
//! tonic allocates an encode or decode buffer per message, 8 KiB by default. The plugin's
//! messages are mostly a few hundred bytes, and an 8 KiB block is past glibc's per-thread cache,
//! so each of the six per request took the slow path of malloc and free (a read through the
//! server is three RPCs: `resolve-path`, the read and the storage `Get`). 1 KiB blocks come from
//! the cache; a larger message grows its buffer as it would anyway.

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The buffer a message starts in.
const BUFFER_SIZE: usize = 1024;

/// How much a server-streaming call may batch before it yields (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding with 1 KiB buffers; named by `build.rs` as the generated code's codec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SmallBufferCodec<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
