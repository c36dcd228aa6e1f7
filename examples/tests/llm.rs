//! The LLM example: the key, single flight, non-deterministic requests, TTL hints and the report.

use std::time::Duration;

use cache_core::{CachePolicy, Classified};
use examples::llm::demo::{question, run_demo, setup, Setup, MODEL};
use examples::llm::{
    cache_key, llm_policy, ChatRequest, ChatResponse, Usage, DEFAULT_TTL, TIME_SENSITIVE_TTL_SECS,
};
use tokio::task::JoinSet;
use tower::ServiceExt;

async fn ask(setup: &Setup, request: ChatRequest) -> ChatResponse {
    setup.service.clone().oneshot(request).await.unwrap()
}

#[test]
fn equivalent_requests_share_a_key() {
    let key = cache_key(&question("What is 2 + 2?")).unwrap();
    let reformatted = ChatRequest::new(format!(" {MODEL} "))
        .message("System ", "\tYou are a concise assistant.")
        .message("USER", "  What is 2 + 2?  \n")
        .temperature(-0.0)
        .user("someone-else");
    assert_eq!(cache_key(&reformatted).unwrap(), key);
    assert!(key.starts_with("llm:"));
    assert_eq!(key.len(), "llm:".len() + 64, "a SHA-256 in hex");
}

#[test]
fn whatever_changes_the_answer_changes_the_key() {
    let base = question("What is 2 + 2?");
    let key = cache_key(&base).unwrap();
    let variants = [
        (
            "model",
            ChatRequest {
                model: "other-model".into(),
                ..base.clone()
            },
        ),
        ("inner whitespace", question("What is 2  +  2?")),
        ("content case", question("what is 2 + 2?")),
        ("max_tokens", base.clone().max_tokens(16)),
        ("top_p", base.clone().top_p(0.5)),
        ("seed", base.clone().seed(7)),
        (
            "opted-in temperature",
            base.clone().temperature(0.5).cache_nondeterministic(),
        ),
        (
            "one message fewer",
            ChatRequest::new(MODEL)
                .message("user", "What is 2 + 2?")
                .temperature(0.0),
        ),
        (
            "another role",
            ChatRequest::new(MODEL)
                .message("system", "You are a concise assistant.")
                .message("assistant", "What is 2 + 2?")
                .temperature(0.0),
        ),
    ];
    for (what, request) in variants {
        assert_ne!(cache_key(&request).unwrap(), key, "{what}");
    }
}

#[test]
fn a_zero_ttl_hint_shares_the_call_but_stores_nothing() {
    let policy = llm_policy(DEFAULT_TTL);
    let Classified::Read { key, read } = policy.classify(&question("Hi")) else {
        panic!("a cached read")
    };
    let answer = |hint| ChatResponse {
        content: "Hello".into(),
        usage: Usage::default(),
        cache_ttl_secs: hint,
    };
    assert_eq!(policy.fill(&key, &read, &answer(None)).ttl, DEFAULT_TTL);
    assert_eq!(
        policy.fill(&key, &read, &answer(Some(30))).ttl,
        Duration::from_secs(30)
    );
    assert_eq!(
        policy.fill(&key, &read, &answer(Some(0))).ttl,
        Duration::ZERO
    );
}

#[tokio::test(start_paused = true)]
async fn twenty_concurrent_identical_prompts_make_one_call() {
    let setup = setup();
    let mut calls = JoinSet::new();
    for _ in 0..20 {
        calls.spawn(
            setup
                .service
                .clone()
                .oneshot(question("Why is the sky blue?")),
        );
    }
    let mut answers = Vec::new();
    while let Some(answer) = calls.join_next().await {
        answers.push(answer.unwrap().unwrap());
    }
    assert_eq!(setup.llm.calls(), 1);
    assert!(answers.iter().all(|answer| *answer == answers[0]));
    let stats = setup.stats.snapshot();
    assert_eq!((stats.misses, stats.dedupes), (1, 19));
    assert_eq!(setup.service.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn sampled_requests_reach_the_model_every_time() {
    let setup = setup();
    let creative = question("Name a cat.").temperature(0.9);
    let mut calls = JoinSet::new();
    for _ in 0..5 {
        calls.spawn(setup.service.clone().oneshot(creative.clone()));
    }
    let mut answers = std::collections::BTreeSet::new();
    while let Some(answer) = calls.join_next().await {
        answers.insert(answer.unwrap().unwrap().content);
    }
    ask(&setup, creative).await;
    assert_eq!(setup.llm.calls(), 6, "no single flight, no cache");
    assert_eq!(answers.len(), 5, "each caller got its own sample");
    assert_eq!(setup.stats.snapshot().passthrough, 6);
}

#[tokio::test(start_paused = true)]
async fn an_opted_in_sampled_request_is_cached() {
    let setup = setup();
    let creative = question("Name a cat.")
        .temperature(0.9)
        .cache_nondeterministic();
    let first = ask(&setup, creative.clone()).await;
    for _ in 0..3 {
        assert_eq!(ask(&setup, creative.clone()).await, first);
    }
    assert_eq!(setup.llm.calls(), 1);
    assert_eq!(setup.stats.snapshot().hits, 3);
}

#[tokio::test(start_paused = true)]
async fn the_responses_ttl_hint_is_respected() {
    let setup = setup();
    let today = question("What is the weather today?");
    assert_eq!(
        ask(&setup, today.clone()).await.cache_ttl_secs,
        Some(TIME_SENSITIVE_TTL_SECS)
    );
    let hint = Duration::from_secs(TIME_SENSITIVE_TTL_SECS);

    tokio::time::advance(hint - Duration::from_millis(100)).await;
    ask(&setup, today.clone()).await;
    assert_eq!(setup.llm.calls(), 1, "still fresh just before the hint");

    tokio::time::advance(Duration::from_millis(200)).await;
    ask(&setup, today).await;
    assert_eq!(setup.llm.calls(), 2, "expired just after the hint");
}

#[tokio::test(start_paused = true)]
async fn answers_without_a_hint_live_for_the_default_ttl() {
    let setup = setup();
    let capital = question("What is the capital of Peru?");
    ask(&setup, capital.clone()).await;
    tokio::time::advance(DEFAULT_TTL - Duration::from_secs(1)).await;
    ask(&setup, capital.clone()).await;
    assert_eq!(setup.llm.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    ask(&setup, capital).await;
    assert_eq!(setup.llm.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn errors_are_not_cached() {
    let setup = setup();
    let empty = ChatRequest::new(MODEL).temperature(0.0);
    for _ in 0..2 {
        assert!(setup.service.clone().oneshot(empty.clone()).await.is_err());
    }
    assert_eq!(setup.llm.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_demo_reports_the_calls_and_tokens_saved() {
    let report = run_demo().await.unwrap();
    assert_eq!((report.requests, report.calls), (32, 8));
    assert_eq!((report.tokens, report.tokens_without_cache), (502, 2109));
    assert_eq!(
        (
            report.hits,
            report.misses,
            report.dedupes,
            report.passthrough
        ),
        (5, 5, 19, 3)
    );
    let steps: Vec<(u64, u64)> = report.steps.iter().map(|s| (s.requests, s.calls)).collect();
    assert_eq!(
        steps,
        [
            (20, 1),
            (1, 0),
            (1, 1),
            (3, 3),
            (3, 1),
            (2, 1),
            (1, 1),
            (1, 0)
        ]
    );
    assert_eq!(
        report.steps[3].distinct_answers, 3,
        "sampled answers differ"
    );
    assert_eq!(
        report.tokens,
        report.steps.iter().map(|s| s.tokens).sum::<u64>()
    );
    let text = report.to_string();
    assert!(
        text.contains("model calls: 8 for 32 requests (75% saved)"),
        "{text}"
    );
}
