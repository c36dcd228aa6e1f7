//! The byte layout of a stored entry: a header, the entry's metadata, then the codec's payload.
//!
//! ```text
//! magic 0xCE | format version | codec id | fill stamp (u64 LE)
//!   | fresh until (u64 LE, Unix ms) | revalidate until (u64 LE, Unix ms)
//!   | tag count (u16 LE) | per tag: length (u16 LE) + UTF-8 bytes | payload
//! ```
//!
//! A byte store keeps the tags and the stamp beside the value so that a read can check them against the
//! recorded invalidations without another lookup, and the entry's [`Freshness`] so that a read can tell
//! a fresh entry from a stale one (the store expires it at the end of its stale periods).
//!
//! ```
//! use cache_core::codec::{envelope, Bincode, MessagePack};
//! use cache_core::FillStamp;
//!
//! let tags = vec!["guild:1".to_owned()];
//! let bytes = envelope::encode(&Bincode, FillStamp::new(7), &tags, &"roles")?;
//! let entry = envelope::decode::<_, String>(&Bincode, &bytes)?;
//! assert_eq!((entry.value.as_str(), entry.stamp, entry.tags), ("roles", FillStamp::new(7), tags));
//!
//! // Written by another codec: an error, which a store reports as a miss.
//! assert!(envelope::decode::<_, String>(&MessagePack, &bytes).is_err());
//! # Ok::<(), cache_core::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use std::time::Duration;

use super::Codec;
use crate::{Error, FillStamp, StalePeriods};

/// First byte of every entry.
pub const MAGIC: u8 = 0xCE;
/// Layout version; bump it when the layout changes so old entries become misses.
pub const FORMAT_VERSION: u8 = 2;
/// Where the fill stamp's eight bytes start, for stores that stamp an encoded entry themselves.
pub const STAMP_OFFSET: usize = 3;

/// An entry read back from bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEntry<V> {
    /// When the entry's fill started.
    pub stamp: FillStamp,
    /// Until when the entry is fresh, then refreshed on a hit.
    pub freshness: Freshness,
    /// The entry's tags.
    pub tags: Vec<String>,
    /// The value.
    pub value: V,
}

/// Until when an entry is fresh, and until when a hit on it refreshes it in the background, in Unix
/// milliseconds of the store's clock (the Redis store uses Redis's, so processes whose clocks disagree
/// judge an entry alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The end of the TTL.
    pub fresh_until_ms: u64,
    /// The end of the stale-while-revalidate period.
    pub revalidate_until_ms: u64,
}

impl Freshness {
    /// Fresh for as long as the store keeps it: an entry without stale periods.
    pub const ALWAYS: Self = Self {
        fresh_until_ms: u64::MAX,
        revalidate_until_ms: u64::MAX,
    };

    /// The freshness of an entry stored at `now` (Unix milliseconds) for `ttl`, then `stale`. A shared
    /// store should take `now` from its server's clock, so that every process judges it alike.
    pub fn starting_at(now: u64, ttl: Duration, stale: StalePeriods) -> Self {
        if stale.is_none() {
            return Self::ALWAYS;
        }
        let after = |period: Duration| {
            now.saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX))
        };
        Self {
            fresh_until_ms: after(ttl),
            revalidate_until_ms: after(ttl.saturating_add(stale.while_revalidate)),
        }
    }

    /// True for an entry without stale periods: fresh for as long as the store keeps it.
    pub fn is_always(&self) -> bool {
        self.fresh_until_ms == u64::MAX
    }

    /// Whether an entry read at `now` (Unix milliseconds) is fresh (`None`), or stale and to be
    /// revalidated (`Some(true)`) or only kept for errors (`Some(false)`).
    pub fn stale_at(&self, now: u64) -> Option<bool> {
        if self.is_always() {
            return None;
        }
        (now >= self.fresh_until_ms).then_some(now < self.revalidate_until_ms)
    }
}

/// Encodes an entry that is fresh for as long as the store keeps it.
///
/// # Errors
/// As [`encode_with`].
pub fn encode<C: Codec, V: Serialize + ?Sized>(
    codec: &C,
    stamp: FillStamp,
    tags: &[String],
    value: &V,
) -> Result<Vec<u8>, Error> {
    encode_with(codec, stamp, Freshness::ALWAYS, tags, value)
}

/// Encodes an entry.
///
/// # Errors
/// [`Error::Encode`] when the value cannot be encoded, or a tag is longer than 65,535 bytes, or there are
/// more than 65,535 tags.
pub fn encode_with<C: Codec, V: Serialize + ?Sized>(
    codec: &C,
    stamp: FillStamp,
    freshness: Freshness,
    tags: &[String],
    value: &V,
) -> Result<Vec<u8>, Error> {
    let too_big = |what: &str| Error::Encode {
        codec: C::NAME,
        reason: format!("{what} exceeds 65535"),
    };
    let tag_bytes: usize = tags.iter().map(|tag| tag.len() + 2).sum();
    let mut out = Vec::with_capacity(29 + tag_bytes + 64);
    out.extend_from_slice(&[MAGIC, FORMAT_VERSION, C::ID]);
    out.extend_from_slice(&stamp.get().to_le_bytes());
    out.extend_from_slice(&freshness.fresh_until_ms.to_le_bytes());
    out.extend_from_slice(&freshness.revalidate_until_ms.to_le_bytes());
    let count = u16::try_from(tags.len()).map_err(|_| too_big("tag count"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for tag in tags {
        let len = u16::try_from(tag.len()).map_err(|_| too_big("tag length"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(tag.as_bytes());
    }
    codec.encode(value, &mut out)?;
    Ok(out)
}

/// An entry's header, read without decoding its value or copying its tags.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    /// When the entry's fill started.
    pub stamp: FillStamp,
    /// Until when the entry is fresh.
    pub freshness: Freshness,
    tag_count: u16,
    tag_bytes: &'a [u8],
    /// The codec's bytes of the value.
    pub payload: &'a [u8],
}

impl<'a> RawEntry<'a> {
    /// The entry's tags, borrowed from the bytes (checked to be valid UTF-8 by [`parse`]).
    pub fn tags(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        let mut rest = self.tag_bytes;
        (0..self.tag_count).map(move |_| {
            let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            let (tag, tail) = rest[2..].split_at(len);
            rest = tail;
            std::str::from_utf8(tag).unwrap_or_default()
        })
    }
}

/// Reads the header of an entry written by [`encode`] with codec `C`, leaving the value encoded: a store
/// can check the stamp and tags first and decode only what it serves.
///
/// # Errors
/// [`Error::Decode`] for another codec, another version, or truncated or corrupted bytes.
pub fn parse<C: Codec>(bytes: &[u8]) -> Result<RawEntry<'_>, Error> {
    let mut reader = Reader { bytes };
    let [magic, version, codec_id] = reader.array::<3>()?;
    if magic != MAGIC {
        return Err(Error::decode("not a cache entry (bad magic byte)"));
    }
    if version != FORMAT_VERSION {
        return Err(Error::decode(format!(
            "format version {version}, expected {FORMAT_VERSION}"
        )));
    }
    if codec_id != C::ID {
        return Err(Error::decode(format!(
            "written by codec {codec_id}, expected {} ({})",
            C::ID,
            C::NAME
        )));
    }
    let stamp = FillStamp::new(u64::from_le_bytes(reader.array::<8>()?));
    let freshness = Freshness {
        fresh_until_ms: u64::from_le_bytes(reader.array::<8>()?),
        revalidate_until_ms: u64::from_le_bytes(reader.array::<8>()?),
    };
    let tag_count = u16::from_le_bytes(reader.array::<2>()?);
    let tags_start = reader.bytes;
    for _ in 0..tag_count {
        let len = usize::from(u16::from_le_bytes(reader.array::<2>()?));
        let raw = reader.take(len)?;
        std::str::from_utf8(raw).map_err(|_| Error::decode("tag is not UTF-8"))?;
    }
    let tag_bytes = &tags_start[..tags_start.len() - reader.bytes.len()];
    Ok(RawEntry {
        stamp,
        freshness,
        tag_count,
        tag_bytes,
        payload: reader.bytes,
    })
}

/// Decodes an entry written by [`encode`] with the same codec and format version.
///
/// # Errors
/// [`Error::Decode`] for anything else: other codec, other version, truncated or corrupted bytes.
pub fn decode<C: Codec, V: DeserializeOwned>(
    codec: &C,
    bytes: &[u8],
) -> Result<DecodedEntry<V>, Error> {
    let raw = parse::<C>(bytes)?;
    let value = codec.decode(raw.payload)?;
    Ok(DecodedEntry {
        stamp: raw.stamp,
        freshness: raw.freshness,
        tags: raw.tags().map(str::to_owned).collect(),
        value,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        if self.bytes.len() < len {
            return Err(Error::decode("entry is truncated"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}
