//! Turning values into bytes for stores that hold bytes, and back.
//!
//! [`Bincode`] is the default: compact and fast, but not self-describing, so it cannot carry serde's
//! `untagged` or `flatten` enums or `serde_json::Value`. [`MessagePack`] carries those at some cost in size
//! and speed. Stored entries are wrapped in an [`envelope`] that names the codec and the format
//! version, so bytes written by another codec or another version decode as a miss, never as a wrong value.
//!
//! ```
//! use cache_core::codec::{Bincode, Codec, MessagePack};
//!
//! let mut bytes = Vec::new();
//! Bincode.encode(&("guild", 42u64), &mut bytes)?;
//! assert_eq!(Bincode.decode::<(String, u64)>(&bytes)?, ("guild".to_owned(), 42));
//!
//! let json: serde_json_like::Value = serde_json_like::Value::Number(7);
//! bytes.clear();
//! MessagePack.encode(&json, &mut bytes)?;
//! assert_eq!(MessagePack.decode::<serde_json_like::Value>(&bytes)?, json);
//! # mod serde_json_like {
//! #     #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! #     #[serde(untagged)]
//! #     pub enum Value { Number(u64), Text(String) }
//! # }
//! # Ok::<(), cache_core::Error>(())
//! ```

pub mod envelope;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Error;

/// Largest value a codec will decode; a corrupted length prefix cannot make it allocate more.
pub const MAX_DECODED_BYTES: usize = 64 << 20;

/// Encodes and decodes values for byte stores.
pub trait Codec: Send + Sync + 'static {
    /// Identifies the codec in stored entries; distinct for every codec.
    const ID: u8;
    /// A name for errors and traces.
    const NAME: &'static str;

    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    /// [`Error::Encode`] when the value cannot be represented by this codec.
    fn encode<V: Serialize + ?Sized>(&self, value: &V, out: &mut Vec<u8>) -> Result<(), Error>;

    /// Decodes a whole value from `bytes`; trailing bytes are an error.
    ///
    /// # Errors
    /// [`Error::Decode`] when the bytes are not a value of type `V` in this codec.
    fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, Error>;
}

/// bincode 2 in serde mode, standard configuration (varint integers).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODED_BYTES>()
}

impl Codec for Bincode {
    const ID: u8 = 1;
    const NAME: &'static str = "bincode";

    fn encode<V: Serialize + ?Sized>(&self, value: &V, out: &mut Vec<u8>) -> Result<(), Error> {
        bincode::serde::encode_into_std_write(value, out, bincode_config())
            .map(|_| ())
            .map_err(|err| Error::Encode {
                codec: Self::NAME,
                reason: err.to_string(),
            })
    }

    fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, Error> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode_config())
            .map_err(|err| Error::decode(format!("bincode: {err}")))?;
        if read != bytes.len() {
            return Err(Error::decode(format!(
                "bincode: {} trailing bytes",
                bytes.len() - read
            )));
        }
        Ok(value)
    }
}

/// MessagePack with field names (`rmp-serde`), self-describing.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

impl Codec for MessagePack {
    const ID: u8 = 2;
    const NAME: &'static str = "messagepack";

    fn encode<V: Serialize + ?Sized>(&self, value: &V, out: &mut Vec<u8>) -> Result<(), Error> {
        value
            .serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())
            .map_err(|err| Error::Encode {
                codec: Self::NAME,
                reason: err.to_string(),
            })
    }

    fn decode<V: DeserializeOwned>(&self, bytes: &[u8]) -> Result<V, Error> {
        let mut reader = bytes;
        let mut deserializer = rmp_serde::Deserializer::new(&mut reader);
        let value = V::deserialize(&mut deserializer)
            .map_err(|err| Error::decode(format!("messagepack: {err}")))?;
        if !reader.is_empty() {
            return Err(Error::decode(format!(
                "messagepack: {} trailing bytes",
                reader.len()
            )));
        }
        Ok(value)
    }
}
