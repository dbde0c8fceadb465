//! The storage conformance suite (after River's `riverdrivertest`): the same cases of
//! admission, claims, leases, token checks, ordering and release run against every
//! backend through the storage API alone, so that a backend is done when it passes
//! them. The hooks and the application's writes come from the binary and plain SQL, as
//! a user makes them; everything under test is called as the engine calls it.

mod common;

use common::TestDb;
use httphooks::storage::callbacks::{self, Claim, ClaimFilter, Claimed, Outcome, StartMarks};
use httphooks::storage::models::{Attempt, Status};
use httphooks::storage::{health, hooks, Db};

const URL: &str = "http://127.0.0.1:9/hook";

/// Runs each case once per backend: `conformance!(name, |db: TestDb| …)`.
macro_rules! conformance {
    ($name:ident, $body:expr) => {
        on_every_backend!($name, $body);
    };
}

fn open(db: &TestDb) -> Db {
    Db::open_migrated(Some(&db.url)).unwrap()
}

/// A migrated database with the custom-event hook `h` (and `o`, ordered).
fn with_hooks(db: TestDb) -> TestDb {
    let db = db.migrated();
    db.ok(&["hooks", "add", "h", "--events", "e", "--url", URL]);
    db.ok(&[
        "hooks",
        "add",
        "o",
        "--events",
        "e",
        "--url",
        URL,
        "--ordered",
    ]);
    db
}

fn enqueue(conn: &mut Db, hook: &str, n: usize) {
    for i in 0..n {
        let made = httphooks::enqueue(conn, hook, "e", &serde_json::json!({ "i": i })).unwrap();
        assert_eq!(made, 1);
    }
}

fn claim(conn: &mut Db, token: &str, limit: i64) -> Vec<Claimed> {
    claim_with(conn, token, limit, &ClaimFilter::default())
}

fn claim_with(conn: &mut Db, token: &str, limit: i64, filter: &ClaimFilter) -> Vec<Claimed> {
    let marks = StartMarks {
        up_to: limit,
        except_hooks: Vec::new(),
    };
    conn.write_transaction(|conn| {
        conn.backend().claim(&Claim {
            filter,
            limit,
            token,
            marks: &marks,
        })
    })
    .unwrap()
}

/// Claims the callbacks `ids` (as `send_callbacks --callback ID` does: due or not).
fn claim_named(conn: &mut Db, token: &str, ids: &[i64]) -> Vec<Claimed> {
    let named = ClaimFilter {
        callback_ids: ids.to_vec(),
        ..Default::default()
    };
    claim_with(conn, token, 10, &named)
}

fn ids(claims: &[Claimed]) -> Vec<i64> {
    claims.iter().map(|c| c.callback.id).collect()
}

/// One attempt's outcome, as the engine records it.
fn outcome(id: i64, status: Status) -> Outcome {
    Outcome {
        callback_id: id,
        hook_id: 0,
        rendered_payload: Some("{}".into()),
        status,
        status_details: "200 OK".to_owned(),
        next_attempt_at: None,
        attempts: vec![Attempt::default()],
        shared_request: false,
    }
}

fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

conformance!(admission_makes_callbacks_in_creation_order, |db: TestDb| {
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 5);
    assert_eq!(conn.backend().count_new(None).unwrap(), 5);
    assert!(conn.oldest_new_callback().unwrap().is_some());
    assert_eq!(conn.write_transaction(|c| c.backend().admit(3)).unwrap(), 3);
    assert_eq!(conn.backend().count_new(None).unwrap(), 2);
    assert_eq!(callbacks::admit_all(&mut conn).unwrap(), 2);
    assert_eq!(conn.backend().count_new(None).unwrap(), 0);
    assert_eq!(conn.oldest_new_callback().unwrap(), None);
    let listed = callbacks::list(
        &mut conn,
        &callbacks::ListFilter {
            limit: 10,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(listed.len(), 5);
    // Newest first; ids follow the events' order, data and webhook-ids come along.
    let data: Vec<i64> = listed
        .iter()
        .map(|c| {
            let data: serde_json::Value = serde_json::from_str(&c.event_data).unwrap();
            data["data"]["i"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(data, vec![4, 3, 2, 1, 0]);
    for callback in &listed {
        assert_eq!(callback.status, Status::Waiting);
        let id = callback.webhook_id();
        assert!(id.starts_with("msg_") && id.len() == 4 + 32, "{id}");
    }
    let mut webhook_ids: Vec<String> = listed.iter().map(|c| c.webhook_id()).collect();
    webhook_ids.dedup();
    assert_eq!(webhook_ids.len(), 5);
    assert_eq!(
        callbacks::count_by_status(&mut conn, Status::Waiting, None).unwrap(),
        5
    );
});

conformance!(
    claims_take_due_callbacks_in_order_up_to_the_limit,
    |db: TestDb| {
        let db = with_hooks(db);
        let mut conn = open(&db);
        enqueue(&mut conn, "h", 5);
        // A claim admits what it needs first.
        let first = claim(&mut conn, "run-a", 3);
        assert_eq!(first.len(), 3);
        let first_ids = ids(&first);
        assert!(first_ids.windows(2).all(|w| w[0] < w[1]), "{first_ids:?}");
        for claimed in &first {
            assert_eq!(claimed.previous_token, None);
            assert!(claimed.marked);
        }
        // Another run gets the rest, never what the first holds.
        let second = claim(&mut conn, "run-b", 10);
        assert_eq!(second.len(), 2);
        assert!(ids(&second).iter().all(|id| !first_ids.contains(id)));
        assert!(claim(&mut conn, "run-c", 10).is_empty());
        // peek_due agrees: nothing is due while the leases last.
        assert!(callbacks::peek_due(&mut conn, &ClaimFilter::default(), 10)
            .unwrap()
            .is_empty());
    }
);

conformance!(
    a_lease_that_ran_out_is_taken_over_with_its_history,
    |db: TestDb| {
        let db = with_hooks(db);
        let mut conn = open(&db);
        enqueue(&mut conn, "h", 2);
        let taken = claim(&mut conn, "dead-run", 2);
        assert_eq!(taken.len(), 2);
        assert_eq!(
            callbacks::expire_claims_of(&mut conn, "dead-run").unwrap(),
            2
        );
        let again = claim(&mut conn, "next-run", 1);
        assert_eq!(ids(&again), vec![taken[0].callback.id]);
        assert_eq!(again[0].previous_token.as_deref(), Some("dead-run"));
        assert!(again[0].previous_started);
        // Recording the dead run's unknown outcome counts an attempt and keeps the claim.
        callbacks::record_unknown_outcomes(&mut conn, "next-run", &[&again[0]]).unwrap();
        let callback = callbacks::get(&mut conn, again[0].callback.id)
            .unwrap()
            .unwrap();
        assert_eq!(callback.attempts, 1);
        assert_eq!(callback.claim_token.as_deref(), Some("next-run"));
        assert_eq!(
            callbacks::attempts_of(&mut conn, callback.id).unwrap()[0]
                .error_kind
                .as_deref(),
            Some("unknown")
        );
    }
);

conformance!(only_the_token_holder_renews_and_records, |db: TestDb| {
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 1);
    let claimed = claim(&mut conn, "holder", 1);
    let id = claimed[0].callback.id;
    assert_eq!(
        callbacks::renew(&mut conn, "other", &[id], true).unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        callbacks::renew(&mut conn, "holder", &[id], true).unwrap(),
        vec![id]
    );
    // An outcome under another token changes nothing.
    let changed = conn
        .write_transaction(|c| {
            c.backend()
                .apply_outcomes("other", &[&outcome(id, Status::Sent)])
        })
        .unwrap();
    assert_eq!(changed, 0);
    let callback = callbacks::get(&mut conn, id).unwrap().unwrap();
    assert_eq!(callback.status, Status::Waiting);
    let changed = conn
        .write_transaction(|c| {
            c.backend()
                .apply_outcomes("holder", &[&outcome(id, Status::Sent)])
        })
        .unwrap();
    assert_eq!(changed, 1);
    let callback = callbacks::get(&mut conn, id).unwrap().unwrap();
    assert_eq!(callback.status, Status::Sent);
    assert_eq!(callback.attempts, 1);
    assert_eq!(callback.status_details, "200 OK");
    assert_eq!(callback.payload.as_deref(), Some("{}"));
    assert_eq!(callback.claim_token, None);
    assert!(callback.updated_at.is_some());
    // A finished callback is neither renewed nor claimed again.
    assert!(callbacks::renew(&mut conn, "holder", &[id], false)
        .unwrap()
        .is_empty());
    assert!(claim(&mut conn, "later", 10).is_empty());
});

// Removing a hook with --force cancels its waiting callbacks, those a run holds but has
// not started too: the run's outcome, written afterwards, changes none of them. One the
// run has started may be on the wire: it stays the run's, and its outcome is written.
conformance!(
    cancelling_a_hooks_callbacks_takes_those_a_run_has_not_started,
    |db: TestDb| {
        let db = with_hooks(db);
        let mut conn = open(&db);
        enqueue(&mut conn, "h", 2);
        let marks = StartMarks {
            up_to: 1,
            except_hooks: Vec::new(),
        };
        let claimed = conn
            .write_transaction(|c| {
                c.backend().claim(&Claim {
                    filter: &ClaimFilter::default(),
                    limit: 10,
                    token: "holder",
                    marks: &marks,
                })
            })
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let (started, unstarted): (Vec<&Claimed>, Vec<&Claimed>) =
            claimed.iter().partition(|c| c.marked);
        assert_eq!((started.len(), unstarted.len()), (1, 1));
        let hook = hooks::require(&mut conn, "h").unwrap();
        assert_eq!(
            callbacks::in_flight_of_hook(&mut conn, hook.id).unwrap().0,
            1
        );
        let cancelled = hooks::remove(&mut conn, &hook, "cancelled: hook h was removed").unwrap();
        assert_eq!(cancelled, 1);
        let write = |conn: &mut Db, id: i64| {
            conn.write_transaction(|c| {
                c.backend()
                    .apply_outcomes("holder", &[&outcome(id, Status::Sent)])
            })
            .unwrap()
        };
        let id = unstarted[0].callback.id;
        assert_eq!(write(&mut conn, id), 0, "the run no longer holds it");
        let callback = callbacks::get(&mut conn, id).unwrap().unwrap();
        assert_eq!(callback.status, Status::Error);
        assert_eq!(callback.status_details, "cancelled: hook h was removed");
        assert_eq!(callback.claim_token, None);
        let id = started[0].callback.id;
        assert_eq!(write(&mut conn, id), 1, "the run still holds what it sent");
        let callback = callbacks::get(&mut conn, id).unwrap().unwrap();
        assert_eq!(callback.status, Status::Sent);
    }
);

// A run does not take over the callbacks another live run of its host started, even
// when their lease has run out (that run could not renew it while the database was
// locked, and may be waiting to record them); unstarted ones it takes.
conformance!(
    the_started_claims_of_a_live_run_are_not_taken_over,
    |db: TestDb| {
        let db = with_hooks(db);
        let mut conn = open(&db);
        enqueue(&mut conn, "h", 2);
        let marks = StartMarks {
            up_to: 1,
            except_hooks: Vec::new(),
        };
        let claimed = conn
            .write_transaction(|c| {
                c.backend().claim(&Claim {
                    filter: &ClaimFilter::default(),
                    limit: 10,
                    token: "host:1:live",
                    marks: &marks,
                })
            })
            .unwrap();
        assert_eq!(claimed.len(), 2);
        db.sql("UPDATE httphooks_callbacks SET claimed_until = created_at");
        // The run itself never claims what it holds, started or not.
        let own = ClaimFilter {
            own_token: Some("host:1:live".to_owned()),
            ..ClaimFilter::default()
        };
        assert!(claim_with(&mut conn, "host:1:live", 10, &own).is_empty());
        let filter = ClaimFilter {
            live_tokens: vec!["host:1:live".to_owned()],
            ..ClaimFilter::default()
        };
        let taken = claim_with(&mut conn, "other", 10, &filter);
        assert_eq!(taken.len(), 1);
        assert!(!taken[0].previous_started);
        assert_eq!(
            taken[0].callback.id,
            claimed.iter().find(|c| !c.marked).unwrap().callback.id
        );
        // Once that run is gone (not live), its started claim is taken, as started.
        let taken = claim(&mut conn, "later", 10);
        assert_eq!(taken.len(), 1);
        assert!(taken[0].previous_started);
    }
);

conformance!(a_failed_attempt_waits_for_its_retry_time, |db: TestDb| {
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 1);
    let id = claim(&mut conn, "run", 1)[0].callback.id;
    let later = now() + chrono::TimeDelta::hours(1);
    let failed = Outcome {
        status: Status::Waiting,
        status_details: "503".to_owned(),
        next_attempt_at: Some(later),
        rendered_payload: None,
        ..outcome(id, Status::Waiting)
    };
    assert_eq!(
        conn.write_transaction(|c| c.backend().apply_outcomes("run", &[&failed]))
            .unwrap(),
        1
    );
    let callback = callbacks::get(&mut conn, id).unwrap().unwrap();
    let due = callback.next_attempt_at.unwrap();
    assert!(
        (due - later).num_milliseconds().abs() < 1000,
        "{due} {later}"
    );
    assert_eq!(callback.payload, None);
    assert!(claim(&mut conn, "run-2", 10).is_empty());
    // Named callbacks are sent before their retry time.
    assert_eq!(ids(&claim_named(&mut conn, "run-3", &[id])), vec![id]);
});

// Outcomes recorded together, as the recorder writes them: each callback gets its own
// status and attempt records, every field of an attempt reads back as written (values
// and NULLs), a retry keeps the body stored by an earlier attempt, and one another
// run took over changes nothing but keeps its attempt record.
conformance!(
    recorded_outcomes_and_their_attempts_read_back_as_written,
    |db: TestDb| {
        let db = with_hooks(db);
        let mut conn = open(&db);
        enqueue(&mut conn, "h", 3);
        let claimed = ids(&claim(&mut conn, "run", 3));
        let (sent_id, retried_id, lost_id) = (claimed[0], claimed[1], claimed[2]);
        let started_at = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .unwrap()
            .and_hms_micro_opt(12, 30, 15, 250_000)
            .unwrap();
        let answered = Attempt {
            callback_id: sent_id,
            attempt: 1,
            started_at,
            elapsed_ms: 12,
            request_method: "POST".to_owned(),
            request_url: URL.to_owned(),
            request_headers: r#"[["content-type","application/json"]]"#.to_owned(),
            request_body: r#"{"i":0}"#.to_owned(),
            response_status_code: Some(200),
            response_reason: Some("OK".to_owned()),
            response_headers: Some(r#"[["server","x"]]"#.to_owned()),
            response_body: Some("thanks".to_owned()),
            error_kind: None,
            error_message: None,
            batch: Some("batch_1_3_ab (callback 1 of 3)".to_owned()),
            ..Attempt::default()
        };
        let unanswered = Attempt {
            callback_id: retried_id,
            response_status_code: None,
            response_reason: None,
            response_headers: None,
            response_body: None,
            error_kind: Some("timeout".to_owned()),
            error_message: Some("no answer within 1s".to_owned()),
            batch: None,
            ..answered.clone()
        };
        let later = now() + chrono::TimeDelta::hours(1);
        let sent = Outcome {
            rendered_payload: Some(r#"{"i":0}"#.into()),
            attempts: vec![answered.clone()],
            ..outcome(sent_id, Status::Sent)
        };
        let retried = Outcome {
            status_details: "timeout".to_owned(),
            next_attempt_at: Some(later),
            rendered_payload: None,
            attempts: vec![unanswered.clone()],
            ..outcome(retried_id, Status::Waiting)
        };
        // The third was taken over by another run: its outcome changes nothing.
        callbacks::release(&mut conn, "run", &[lost_id], None).unwrap();
        claim(&mut conn, "other", 1);
        let lost = Outcome {
            attempts: vec![Attempt {
                callback_id: lost_id,
                ..answered.clone()
            }],
            ..outcome(lost_id, Status::Sent)
        };
        assert_eq!(
            callbacks::record(&mut conn, "run", &[sent, retried, lost]).unwrap(),
            2
        );

        let callback = callbacks::get(&mut conn, sent_id).unwrap().unwrap();
        assert_eq!((callback.status, callback.attempts), (Status::Sent, 1));
        assert_eq!(callback.payload.as_deref(), Some(r#"{"i":0}"#));
        let callback = callbacks::get(&mut conn, retried_id).unwrap().unwrap();
        assert_eq!((callback.status, callback.attempts), (Status::Waiting, 1));
        assert_eq!(callback.payload, None);
        assert_eq!(callback.claim_token, None);
        let due = callback.next_attempt_at.unwrap();
        assert!(
            (due - later).num_milliseconds().abs() < 1000,
            "{due} {later}"
        );
        let callback = callbacks::get(&mut conn, lost_id).unwrap().unwrap();
        assert_eq!(callback.status, Status::Waiting);
        assert_eq!(callback.claim_token.as_deref(), Some("other"));

        let read = |conn: &mut Db, id: i64| {
            let mut attempts = callbacks::attempts_of(conn, id).unwrap();
            assert_eq!(attempts.len(), 1, "callback {id}");
            Attempt {
                id: 0,
                ..attempts.remove(0)
            }
        };
        let mut expected = answered.clone();
        expected.id = 0;
        assert_eq!(
            format!("{:?}", read(&mut conn, sent_id)),
            format!("{expected:?}")
        );
        assert_eq!(
            format!("{:?}", read(&mut conn, retried_id)),
            format!("{unanswered:?}")
        );
        assert_eq!(read(&mut conn, lost_id).callback_id, lost_id);

        // A retry's outcome keeps the body its first attempt stored.
        assert_eq!(
            ids(&claim_named(&mut conn, "run-2", &[retried_id])),
            vec![retried_id]
        );
        let stored = Outcome {
            rendered_payload: Some(r#"{"i":1}"#.into()),
            attempts: vec![],
            ..outcome(retried_id, Status::Waiting)
        };
        callbacks::record(&mut conn, "run-2", &[stored]).unwrap();
        assert_eq!(
            ids(&claim_named(&mut conn, "run-3", &[retried_id])),
            vec![retried_id]
        );
        let kept = Outcome {
            rendered_payload: None,
            ..outcome(retried_id, Status::Sent)
        };
        assert_eq!(callbacks::record(&mut conn, "run-3", &[kept]).unwrap(), 1);
        let callback = callbacks::get(&mut conn, retried_id).unwrap().unwrap();
        assert_eq!(callback.status, Status::Sent);
        assert_eq!(callback.payload.as_deref(), Some(r#"{"i":1}"#));
    }
);

conformance!(ordered_callbacks_wait_for_earlier_ones, |db: TestDb| {
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "o", 3);
    let first = claim(&mut conn, "run", 10);
    assert_eq!(
        first.len(),
        1,
        "only the oldest of an ordered hook's row is due"
    );
    let id = first[0].callback.id;
    assert_eq!(health::ordered_behind(&mut conn, id + 1).unwrap(), Some(id));
    conn.write_transaction(|c| {
        c.backend()
            .apply_outcomes("run", &[&outcome(id, Status::Sent)])
    })
    .unwrap();
    let next = claim(&mut conn, "run", 10);
    assert_eq!(ids(&next), vec![id + 1]);
});

conformance!(release_gives_claims_back_untouched, |db: TestDb| {
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 2);
    let claimed = ids(&claim(&mut conn, "run", 2));
    assert_eq!(
        callbacks::release(&mut conn, "other", &claimed, None).unwrap(),
        0
    );
    assert_eq!(
        callbacks::release(&mut conn, "run", &claimed, Some("held: no env")).unwrap(),
        2
    );
    let callback = callbacks::get(&mut conn, claimed[0]).unwrap().unwrap();
    assert_eq!(callback.status_details, "held: no env");
    assert_eq!(callback.attempts, 0);
    assert_eq!(callback.claim_token, None);
    let again = claim(&mut conn, "run-2", 10);
    assert_eq!(ids(&again), claimed);
    assert!(again.iter().all(|c| c.previous_token.is_none()));
});

conformance!(filters_and_marks_choose_what_is_claimed, |db: TestDb| {
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 2);
    enqueue(&mut conn, "o", 1);
    let hook_h = httphooks::storage::hooks::require(&mut conn, "h")
        .unwrap()
        .id;
    let only_o = ClaimFilter {
        exclude_hook_ids: vec![hook_h],
        ..Default::default()
    };
    let claimed = claim_with(&mut conn, "run", 10, &only_o);
    assert_eq!(claimed.len(), 1);
    assert_ne!(claimed[0].callback.hook_id, hook_h);
    // Marks: only the first `up_to` outside `except_hooks` are marked as started.
    let marks = StartMarks {
        up_to: 1,
        except_hooks: Vec::new(),
    };
    let rest = conn
        .write_transaction(|c| {
            c.backend().claim(&Claim {
                filter: &ClaimFilter::default(),
                limit: 10,
                token: "run-2",
                marks: &marks,
            })
        })
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest.iter().filter(|c| c.marked).count(), 1);
    assert!(rest[0].marked);
});

conformance!(disabled_hooks_hold_their_callbacks, |db: TestDb| {
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 1);
    callbacks::admit_all(&mut conn).unwrap();
    db.ok(&["hooks", "disable", "h"]);
    assert!(claim(&mut conn, "run", 10).is_empty());
    db.ok(&["hooks", "enable", "h"]);
    assert_eq!(claim(&mut conn, "run", 10).len(), 1);
});

conformance!(concurrent_claims_never_share_a_callback, |db: TestDb| {
    let db = with_hooks(db);
    let mut setup = open(&db);
    enqueue(&mut setup, "h", 60);
    callbacks::admit_all(&mut setup).unwrap();
    let url = db.url.clone();
    let claimed: Vec<i64> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..3)
            .map(|run| {
                let url = url.clone();
                scope.spawn(move || {
                    let mut conn = Db::open_migrated(Some(&url)).unwrap();
                    let mut mine = Vec::new();
                    loop {
                        let token = format!("run-{run}");
                        let marks = StartMarks {
                            up_to: 5,
                            except_hooks: Vec::new(),
                        };
                        let batch = conn
                            .write_transaction(|c| {
                                c.backend().claim(&Claim {
                                    filter: &ClaimFilter::default(),
                                    limit: 5,
                                    token: &token,
                                    marks: &marks,
                                })
                            })
                            .unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(ids(&batch));
                    }
                })
            })
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().unwrap())
            .collect()
    });
    let mut unique = claimed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(claimed.len(), 60);
    assert_eq!(unique.len(), 60);
});

conformance!(
    a_claim_reads_past_callbacks_another_run_holds,
    |db: TestDb| {
        let db = with_hooks(db);
        let mut holder = open(&db);
        enqueue(&mut holder, "h", 6);
        callbacks::admit_all(&mut holder).unwrap();
        // Three due callbacks whose rows the holder has locked: it claimed them, its leases
        // ran out, and it is renewing them (as a slow run does) when the other run claims.
        let held = ids(&claim(&mut holder, "holder", 3));
        callbacks::expire_claims_of(&mut holder, "holder").unwrap();
        let url = db.url.clone();
        let (sender, other_claimed) = std::sync::mpsc::channel();
        let concurrent = holder.backend().profile().allows_concurrent_writers;
        let other = std::thread::scope(|scope| {
            let during = holder
                .write_transaction(|conn| {
                    assert_eq!(callbacks::renew(conn, "holder", &held, false)?, held);
                    scope.spawn(move || {
                        let mut conn = Db::open_migrated(Some(&url)).unwrap();
                        sender.send(ids(&claim(&mut conn, "other", 3))).unwrap();
                    });
                    // Asserted after the commit, so that a failure cannot hang the test.
                    let waited = std::time::Duration::from_secs(if concurrent { 10 } else { 0 });
                    Ok(other_claimed.recv_timeout(waited).ok())
                })
                .unwrap();
            if concurrent {
                // Claimed while the holder's locks were held: the rows after them, at once.
                during.expect("the claim waited for the locks another run holds")
            } else {
                // One writer at a time (SQLite): the claim runs once the renewal commits.
                assert_eq!(during, None);
                other_claimed.recv().unwrap()
            }
        });
        assert_eq!(held.len(), 3);
        assert_eq!(other.len(), 3);
        assert!(
            other.iter().all(|id| id > held.last().unwrap()),
            "{held:?} then {other:?}"
        );
    }
);

conformance!(unused_hook_versions_go_while_changes_wait, |db: TestDb| {
    let db = with_hooks(db);
    db.sql(&format!("CREATE TABLE t ({}, v INTEGER)", db.id_column()));
    db.ok(&[
        "hooks", "add", "th", "--table", "t", "--events", "insert", "--url", URL,
    ]);
    for timeout in ["2s", "3s"] {
        db.ok(&["hooks", "edit", "th", "--timeout", timeout]);
    }
    let versions = "SELECT COUNT(*) AS n FROM httphooks_hook_versions";
    assert_eq!(db.count(versions), 5, "h, o and three of th");
    // A change of the table, not admitted yet.
    db.connect().sql("INSERT INTO t (v) VALUES (1)");
    let mut conn = open(&db);
    assert_eq!(conn.backend().count_new(None).unwrap(), 1);
    assert_eq!(hooks::prune_unused_versions(&mut conn).unwrap(), 2);
    assert_eq!(db.count(versions), 3);
    // The change still becomes a callback of the hook as it is.
    assert_eq!(callbacks::admit_all(&mut conn).unwrap(), 1);
});

/// PostgreSQL's count of rows read that `counts` gives (as `scans * 10^9 + rows`) since
/// `before`, once the count of scans shows that the statistics of the session that read
/// them arrived (a session's counts arrive when it ends; the caller has ended it).
fn rows_counted_since(db: &TestDb, counts: &str, before: i64) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut after = db.count(counts);
    while after / 1_000_000_000 == before / 1_000_000_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        after = db.count(counts);
    }
    assert!(
        after / 1_000_000_000 > before / 1_000_000_000,
        "the session's statistics never arrived"
    );
    after % 1_000_000_000 - before % 1_000_000_000
}

/// PostgreSQL: a claim of thousands (a batch hook's: `--concurrency` × `--batch-size`)
/// and the record of their outcomes find their rows by primary key. Joined by hash, a
/// claim read the whole table, sent callbacks included: time that grew with the
/// table's history.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_a_large_claim_and_its_record_read_only_their_rows() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 1);
    // 40,000 sent callbacks (a table's history) and 3,000 waiting, copies of that one.
    for (status, copies) in [("sent", 40_000), ("waiting", 2_999)] {
        db.sql(&format!(
            "INSERT INTO httphooks_callbacks (hook_id, version_id, event_type, object_id, \
               ordered, event_data, created_at, webhook_id, status, status_details, updated_at) \
             SELECT hook_id, version_id, event_type, object_id, ordered, event_data, created_at, \
               webhook_id || '{status}' || g, '{status}', '', updated_at \
             FROM httphooks_callbacks, generate_series(1, {copies}) g \
             WHERE id = (SELECT min(id) FROM httphooks_callbacks)"
        ));
    }
    db.sql("ANALYZE httphooks_callbacks");
    let scans = "SELECT coalesce(idx_scan, 0) * 1000000000 + seq_tup_read AS n \
                 FROM pg_stat_user_tables WHERE relid = 'httphooks_callbacks'::regclass";
    let before = db.count(scans);
    let claimed = claim(&mut conn, "run", 3_000);
    assert_eq!(claimed.len(), 3_000);
    // So does writing their outcomes.
    let outcomes: Vec<Outcome> = ids(&claimed)
        .into_iter()
        .map(|id| outcome(id, Status::Sent))
        .collect();
    assert_eq!(
        callbacks::record(&mut conn, "run", &outcomes).unwrap(),
        3_000
    );
    drop(conn);
    let rows_scanned = rows_counted_since(&db, scans, before);
    assert!(
        rows_scanned < 1_000,
        "a claim and a record of 3,000 read {rows_scanned} rows of the table by sequential scan"
    );
}

conformance!(an_outcome_holding_nul_is_recorded, |db: TestDb| {
    // Delivery records no NUL in response bodies, but an outcome saved by an older
    // version may hold one (PostgreSQL's text cannot): refused, every run would send
    // the saved callbacks again.
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "h", 1);
    let claimed = claim(&mut conn, "run", 10);
    let mut sent = outcome(claimed[0].callback.id, Status::Sent);
    sent.attempts[0].callback_id = claimed[0].callback.id;
    sent.attempts[0].attempt = 1;
    sent.attempts[0].response_body = Some("a\0b".to_owned());
    sent.attempts[0].error_message = Some("c\0d".to_owned());
    // An OAuth2 token endpoint's answer goes into the details; the payload is stored.
    sent.status_details = "e\0f".to_owned();
    sent.rendered_payload = Some("{\"g\0h\": 1}".into());
    assert_eq!(callbacks::record(&mut conn, "run", &[sent]).unwrap(), 1);
    let details = db
        .text("SELECT status_details AS v FROM httphooks_callbacks")
        .unwrap();
    assert!(details == "e\0f" || details == "e\u{FFFD}f", "{details:?}");
    let body = db
        .text("SELECT response_body AS v FROM httphooks_attempts")
        .unwrap();
    assert!(body == "a\0b" || body == "a\u{FFFD}b", "{body:?}");
});

/// PostgreSQL: an ordered hook's claim tests each callback against the earlier waiting
/// callbacks of its own row only. As one NULL-safe `=`, which PostgreSQL cannot look up
/// in an index, each test read every earlier waiting callback of the hook: a claim of
/// 2,900 took 11.5 s.
#[test]
#[cfg_attr(
    no_postgres,
    ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
)]
fn postgres_an_ordered_claim_reads_only_each_rows_earlier_callbacks() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let db = with_hooks(db);
    let mut conn = open(&db);
    enqueue(&mut conn, "o", 1);
    // 3,000 waiting changes of as many rows of the ordered hook, copies of that one.
    db.sql(
        "INSERT INTO httphooks_callbacks (hook_id, version_id, event_type, object_id, \
           ordered, event_data, created_at, webhook_id, status, status_details, updated_at) \
         SELECT hook_id, version_id, event_type, 'row ' || g, TRUE, event_data, created_at, \
           webhook_id || g, 'waiting', '', updated_at \
         FROM httphooks_callbacks, generate_series(1, 2999) g \
         WHERE id = (SELECT min(id) FROM httphooks_callbacks)",
    );
    db.sql("ANALYZE httphooks_callbacks");
    let reads = "SELECT coalesce(idx_scan, 0) * 1000000000 + idx_tup_read AS n \
                 FROM pg_stat_user_indexes WHERE indexrelname = 'httphooks_callbacks_ordered' \
                 AND schemaname = current_schema()";
    let before = db.count(reads);
    assert_eq!(claim(&mut conn, "run", 3_000).len(), 3_000);
    drop(conn);
    let entries_read = rows_counted_since(&db, reads, before);
    assert!(
        entries_read < 30_000,
        "a claim of 3,000 ordered callbacks read {entries_read} entries of the ordered index"
    );
}
