//! The pipeline: verdicts add up, the first refusal wins, and a step that panics (before or
//! inside its check) or overruns its time accepts instead of losing the message.

use super::*;

enum Behaviour {
    Answer(Verdict),
    PanicAtOnce,
    PanicInside,
    Sleep(Duration),
}

struct Fake {
    name: &'static str,
    behaviour: Behaviour,
}

impl Step for Fake {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self, _phase: &Phase, _facts: &Facts) -> Option<Check> {
        match &self.behaviour {
            Behaviour::Answer(verdict) => Some(Box::pin(std::future::ready(verdict.clone()))),
            Behaviour::PanicAtOnce => panic!("a broken step"),
            Behaviour::PanicInside => Some(Box::pin(async { panic!("a broken check") })),
            Behaviour::Sleep(time) => {
                let time = *time;
                Some(Box::pin(async move {
                    tokio::time::sleep(time).await;
                    Verdict::Reject(Reply::new(550, "5.7.1", "too late to count"))
                }))
            }
        }
    }
}

fn step(name: &'static str, behaviour: Behaviour) -> Arc<dyn Step> {
    Arc::new(Fake { name, behaviour })
}

fn score(points: f64, reason: &str) -> Behaviour {
    Behaviour::Answer(Verdict::Score(Score {
        points,
        reason: reason.into(),
        header: Some(format!("X-{reason}: yes\r\n")),
    }))
}

const THRESHOLDS: Thresholds = Thresholds {
    junk: 5.0,
    reject: 10.0,
};

fn facts() -> Facts {
    Facts {
        ip: "192.0.2.1".parse().expect("ip"),
        helo: Some("mx.example.org".into()),
        mail_from: Some("a@example.org".into()),
        trusted: false,
    }
}

fn data_phase() -> Phase {
    Phase::Data(Arc::new(MessageView {
        head: b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
        spool: crate::store::SpoolFile::unwritten(21),
    }))
}

#[tokio::test(start_paused = true)]
async fn broken_and_slow_steps_accept_and_the_others_still_count() {
    let pipeline = Pipeline::new(
        vec![
            step("early-panic", Behaviour::PanicAtOnce),
            step("one", score(2.0, "ONE")),
            step("inner-panic", Behaviour::PanicInside),
            step("slow", Behaviour::Sleep(Duration::from_secs(60))),
            step("two", score(4.0, "TWO")),
        ],
        Duration::from_secs(5),
        THRESHOLDS,
    );
    let mut tally = Tally::default();
    let refused = pipeline.run(&data_phase(), &facts(), &mut tally).await;
    assert_eq!(refused, None, "no step refused in time");
    assert_eq!(tally.points, 6.0);
    assert_eq!(
        tally.headers,
        vec!["X-ONE: yes\r\n".to_string(), "X-TWO: yes\r\n".to_string()]
    );
    assert_eq!(THRESHOLDS.judge(tally.points), Judgement::Junk);
}

#[tokio::test]
async fn the_first_refusal_ends_the_run_and_names_its_step() {
    let reply = Reply::new(451, "4.7.1", "later");
    let pipeline = Pipeline::new(
        vec![
            step(
                "trust",
                Behaviour::Answer(Verdict::Trust(Score {
                    points: -5.0,
                    reason: "DNSWL_x".into(),
                    header: None,
                })),
            ),
            step("grey", Behaviour::Answer(Verdict::Tempfail(reply.clone()))),
            step("never", Behaviour::PanicAtOnce),
        ],
        Duration::from_secs(5),
        THRESHOLDS,
    );
    let mut tally = Tally::default();
    let refused = pipeline
        .run(&Phase::Rcpt("alice@home.test".into()), &facts(), &mut tally)
        .await;
    assert_eq!(refused, Some(("grey", reply)));
    assert!(tally.trusted);
    assert_eq!(tally.points, -5.0);
}

#[test]
fn thresholds_judge_and_zero_turns_them_off() {
    let cases = [
        (THRESHOLDS, 4.9, Judgement::Inbox),
        (THRESHOLDS, 5.0, Judgement::Junk),
        (THRESHOLDS, 10.0, Judgement::Reject),
        (
            Thresholds {
                junk: 0.0,
                reject: 10.0,
            },
            9.0,
            Judgement::Inbox,
        ),
        (
            Thresholds {
                junk: 5.0,
                reject: 0.0,
            },
            99.0,
            Judgement::Junk,
        ),
    ];
    for (thresholds, points, want) in cases {
        assert_eq!(thresholds.judge(points), want, "{thresholds:?} {points}");
    }
}

#[test]
fn the_status_header_names_score_and_reasons() {
    let tally = Tally {
        points: 6.5,
        reasons: vec![("DNSBL_bl.test".into(), 5.0), ("HELO_NO_DOT".into(), 1.5)],
        headers: Vec::new(),
        trusted: false,
    };
    assert_eq!(
        tally.status_header(&THRESHOLDS),
        "X-Spam-Status: Yes, score=6.5 junk=5.0 reject=10.0\r\n\ttests=DNSBL_bl.test(+5.0),HELO_NO_DOT(+1.5)\r\n"
    );
}
