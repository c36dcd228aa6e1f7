//! Encoding and decoding a Discord guild member (a nested user, four roles, eleven fields) with each of
//! `cache_core`'s codecs, against a `serde_json` round trip of the same value.
//!
//! Per codec: `encode` (into a reused buffer), `decode` (from bytes encoded beforehand) and `roundtrip`
//! (both). `bincode/envelope_roundtrip` adds the stored-entry header with two tags, as the Redis store
//! writes and reads it. The baseline is `baseline/serde_json_roundtrip` (`to_writer` into a reused
//! buffer, `from_slice`). Encoded sizes are printed once at the start.

mod common;

use std::hint::black_box;

use benches::discord::{guild_member, GuildMember};
use cache_core::codec::{envelope, Bincode, Codec, MessagePack};
use cache_core::FillStamp;
use criterion::Criterion;

fn json_encode(member: &GuildMember, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, member).expect("json encode");
}

fn json_decode(bytes: &[u8]) -> GuildMember {
    serde_json::from_slice(bytes).expect("json decode")
}

fn codec_benches<C: Codec>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    codec: C,
    member: &GuildMember,
) {
    let mut encoded = Vec::new();
    codec.encode(member, &mut encoded).expect("encode");
    let decoded: GuildMember = codec.decode(&encoded).expect("decode");
    assert_eq!(&decoded, member, "{} round-trips the member", C::NAME);

    let mut out = Vec::with_capacity(1024);
    group.bench_function(format!("{}/encode", C::NAME), |b| {
        b.iter(|| {
            out.clear();
            codec.encode(black_box(member), &mut out).expect("encode");
            black_box(out.len())
        });
    });
    group.bench_function(format!("{}/decode", C::NAME), |b| {
        b.iter(|| {
            black_box(
                codec
                    .decode::<GuildMember>(black_box(&encoded))
                    .expect("decode"),
            )
        });
    });
    group.bench_function(format!("{}/roundtrip", C::NAME), |b| {
        b.iter(|| {
            out.clear();
            codec.encode(black_box(member), &mut out).expect("encode");
            black_box(codec.decode::<GuildMember>(&out).expect("decode"))
        });
    });
}

fn codec(c: &mut Criterion) {
    let member = guild_member();
    let tags = vec![
        "guild:197038439483310086".to_owned(),
        "user:80351110224678912".to_owned(),
    ];

    let mut json = Vec::new();
    json_encode(&member, &mut json);
    assert_eq!(
        json_decode(&json),
        member,
        "serde_json round-trips the member"
    );
    let mut sizes = Vec::new();
    for (name, len) in [
        ("serde_json", json.len()),
        ("bincode", {
            let mut out = Vec::new();
            Bincode.encode(&member, &mut out).expect("encode");
            out.len()
        }),
        ("messagepack", {
            let mut out = Vec::new();
            MessagePack.encode(&member, &mut out).expect("encode");
            out.len()
        }),
        (
            "bincode envelope, two tags",
            envelope::encode(&Bincode, FillStamp::new(7), &tags, &member)
                .expect("envelope")
                .len(),
        ),
    ] {
        sizes.push(format!("{name} {len} B"));
    }
    println!("encoded guild member: {}", sizes.join(", "));

    let mut group = c.benchmark_group("codec");
    let mut out = Vec::with_capacity(1024);
    group.bench_function("baseline/serde_json_roundtrip", |b| {
        b.iter(|| {
            out.clear();
            json_encode(black_box(&member), &mut out);
            black_box(json_decode(&out))
        });
    });
    group.bench_function("serde_json/encode", |b| {
        b.iter(|| {
            out.clear();
            json_encode(black_box(&member), &mut out);
            black_box(out.len())
        });
    });
    group.bench_function("serde_json/decode", |b| {
        b.iter(|| black_box(json_decode(black_box(&json))));
    });
    codec_benches(&mut group, Bincode, &member);
    codec_benches(&mut group, MessagePack, &member);
    group.bench_function("bincode/envelope_roundtrip", |b| {
        b.iter(|| {
            let bytes = envelope::encode(&Bincode, FillStamp::new(7), black_box(&tags), &member)
                .expect("envelope");
            black_box(envelope::decode::<_, GuildMember>(&Bincode, &bytes).expect("decode"))
        });
    });
    group.finish();
}

fn main() {
    common::run(codec);
}
