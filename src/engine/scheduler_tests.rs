//! The scheduler's unit tests: fairness between endpoints and routes, limits,
//! breakers and start marks, on a clock the tests move.

use super::*;
use crate::delivery::http::Request;
use crate::storage::models::Callback;

/// A single request of callback `id` (the dispatcher's tests use it too).
pub(in crate::engine) fn job(id: i64, route: &str, lease: Duration) -> Job {
    let callback = Callback {
        id,
        ..Callback::default()
    };
    Job {
        members: vec![Member {
            callback,
            body: "".into(),
            rendered_now: false,
        }],
        batch: false,
        full: true,
        prepared: Prepared {
            request: Request {
                method: "POST".into(),
                url: format!("{route}/x"),
                headers: Vec::new(),
                body: None,
                timeout: Duration::from_secs(1),
                ca_file: None,
            },
            webhook_id: String::new(),
            oauth: None,
            signing_keys: None,
            auth_description: None,
        },
        route: route.to_owned(),
        size: 0,
        lease_until: Instant::now() + lease,
        timeout: Duration::from_secs(1),
        marked: false,
    }
}

const LONG: Duration = Duration::from_secs(60);

fn start(queues: &mut Queues) -> Option<String> {
    match queues.next(Instant::now()) {
        Next::Job(job) => Some(job.route),
        _ => None,
    }
}

#[test]
fn endpoints_are_scheme_host_and_port_and_routes_add_the_path() {
    assert_eq!(
        endpoint_of("https://a.example/x?y"),
        "https://a.example:443"
    );
    assert_eq!(
        endpoint_of("http://a.example:8080/"),
        "http://a.example:8080"
    );
    assert_eq!(route_of("https://a.example/x?y"), "https://a.example:443/x");
    assert_eq!(route_of("http://a.example:8080"), "http://a.example:8080/");
}

#[test]
fn a_hanging_route_keeps_one_worker_while_the_other_route_of_its_server_gets_the_rest() {
    let mut queues = Queues::new(16, 64);
    for id in 0..128 {
        let route = if id % 2 == 0 {
            "http://server:80/hang"
        } else {
            "http://server:80/ok"
        };
        queues.add_claimed(job(id, route, LONG));
    }
    for job in queues.take_to_mark() {
        queues.add_ready(job);
    }
    let now = Instant::now();
    let mut started = Vec::new();
    for _ in 0..60 {
        while let Some(route) = start(&mut queues) {
            started.push(route);
            if queues.in_flight() >= 16 {
                break;
            }
        }
        // The healthy route answers everything it was sent; the other never does,
        // and its requests time out now and then.
        let ok = started.iter().filter(|r| r.ends_with("/ok")).count();
        for _ in 0..ok {
            queues.finished(
                "http://server:80/ok",
                0,
                Pressure::Answered(Duration::from_millis(1)),
                now,
            );
        }
        started.retain(|r| !r.ends_with("/ok"));
        if started.len() > 1 {
            queues.finished("http://server:80/hang", 0, Pressure::Overloaded, now);
            started.pop();
        }
        for job in queues.take_to_mark() {
            queues.add_ready(job);
        }
    }
    let hanging = queues.routes.get("http://server:80/hang").unwrap();
    assert_eq!(hanging.limiter.limit(), 1, "one probe at a time");
    assert!(hanging.in_flight <= 1);
    let healthy = queues.routes.get("http://server:80/ok").unwrap();
    assert!(
        healthy.limiter.limit() >= 8,
        "the healthy route's limit: {}",
        healthy.limiter.limit()
    );
    assert!(
        queues
            .full_routes()
            .contains(&"http://server:80/hang".to_owned()),
        "no more claims for the hanging route"
    );
    let states = queues.endpoint_states();
    assert_eq!(states.len(), 1, "reports are per server: {states:?}");
}

#[test]
fn a_dead_endpoint_keeps_one_worker_and_the_others_get_the_rest() {
    let mut queues = Queues::new(16, 64);
    for id in 0..128 {
        let endpoint = if id % 2 == 0 {
            "http://dead:80"
        } else {
            "http://ok:80"
        };
        queues.add_claimed(job(id, endpoint, LONG));
    }
    for job in queues.take_to_mark() {
        queues.add_ready(job);
    }
    // Both start at one request at a time.
    let first: Vec<_> = (0..3).filter_map(|_| start(&mut queues)).collect();
    assert_eq!(first.len(), 2, "{first:?}");
    // The healthy one answers and grows; the dead one never answers.
    let now = Instant::now();
    for _ in 0..40 {
        queues.finished(
            "http://ok:80",
            0,
            Pressure::Answered(Duration::from_millis(1)),
            now,
        );
        for job in queues.take_to_mark() {
            queues.add_ready(job);
        }
        while let Some(endpoint) = start(&mut queues) {
            assert_eq!(endpoint, "http://ok:80", "the dead one is at its limit");
            if queues.in_flight() >= 16 {
                break;
            }
        }
        if queues.in_flight() >= 16 {
            break;
        }
    }
    assert_eq!(queues.in_flight(), 16);
    assert!(
        queues.full_routes().contains(&"http://dead:80".to_owned()),
        "no more claims for the dead endpoint"
    );
}

#[test]
fn many_dead_endpoints_share_half_the_workers_from_the_start() {
    let mut queues = Queues::new(16, 64);
    // 24 endpoints that will never answer and one that will; callbacks made in
    // rows, the healthy endpoint's first in each.
    for id in 0..480 {
        let endpoint = match id % 2 {
            0 => "http://ok:80".to_owned(),
            _ => format!("http://dead{}:80", id / 2 % 24),
        };
        queues.add_claimed(job(id, &endpoint, LONG));
    }
    for job in queues.take_to_mark() {
        queues.add_ready(job);
    }
    // Nobody has answered yet: half the workers, in the order callbacks were made.
    let first: Vec<String> = (0..16).filter_map(|_| start(&mut queues)).collect();
    assert_eq!(first.len(), 8, "{first:?}");
    assert_eq!(first[0], "http://ok:80");
    // The healthy one answers: the other half is its to use; the dead ones never
    // get more than the shared half.
    let now = Instant::now();
    let mut ok_in_flight = 1;
    for _ in 0..200 {
        if ok_in_flight > 0 {
            let answered = Pressure::Answered(Duration::from_millis(1));
            queues.finished("http://ok:80", 0, answered, now);
            ok_in_flight -= 1;
        }
        for job in queues.take_to_mark() {
            queues.add_ready(job);
        }
        // 16 workers.
        while queues.in_flight() < 16 {
            let Some(endpoint) = start(&mut queues) else {
                break;
            };
            if endpoint == "http://ok:80" {
                ok_in_flight += 1;
            }
        }
    }
    assert_eq!(queues.in_flight(), 16);
    assert!(
        ok_in_flight >= 8,
        "the healthy endpoint has {ok_in_flight} of 16"
    );
}

#[test]
fn a_job_whose_lease_ran_short_does_not_start() {
    let mut queues = Queues::new(4, 16);
    queues.add_ready(job(1, "http://a:80", Duration::from_secs(2)));
    assert!(start(&mut queues).is_none());
    let stale = queues.take_expiring(|_| false);
    assert_eq!(stale.len(), 1, "handed to the dispatcher for renewal");
    queues.dispatch_done = true;
    assert!(matches!(queues.next(Instant::now()), Next::Done));
}

#[test]
fn closed_queues_start_nothing_and_give_back_what_was_not_started() {
    let mut queues = Queues::new(4, 16);
    queues.add_claimed(job(1, "http://a:80", LONG));
    queues.add_ready(job(2, "http://a:80", LONG));
    queues.closed = true;
    assert!(matches!(queues.next(Instant::now()), Next::Done));
    let ids: Vec<i64> = queues
        .take_unstarted()
        .iter()
        .map(|j| j.first_id())
        .collect();
    assert_eq!(ids, vec![1, 2]);
}
