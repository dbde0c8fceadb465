//! `callbacks retry` and `callbacks cancel`. By id, all or nothing: one callback that
//! cannot be changed refuses the whole command. By filter (`--hook`, `--status`,
//! `--since`, `--until`), in batches of [`BATCH`] ids, each its own short transaction,
//! so that a million matches neither hold a lock for long nor need memory for a
//! million ids; what the filter matches but cannot be changed is counted and left
//! alone. A run sending meanwhile loses and doubles nothing: retried callbacks are ones
//! no run holds (failed or sent), and cancelling leaves callbacks a run has started to
//! that run (`callbacks::cancel`).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::OperatorFilter;
use crate::error::{Error, Result};
use crate::storage::callbacks::{self, LeftOut, Selection};
use crate::storage::models::{Callback, Status};
use crate::storage::{hooks, Db};

/// Callbacks changed per transaction.
const BATCH: i64 = 1000;

/// How `callbacks retry` was asked to retry.
pub struct Retry {
    pub status: Option<Status>,
    pub force: bool,
    pub with_current_hook: bool,
}

pub fn retry(db: &mut Db, ids: &[i64], filter: &OperatorFilter, how: Retry) -> Result<()> {
    let example = "httphooks callbacks retry --hook NAME --status error --since 6h";
    let Some(selection) = selection(db, ids, filter, how.status, Status::Error, example)? else {
        return retry_ids(db, ids, &how, filter.dry_run);
    };
    if selection.status == Status::Sent && !how.force {
        return Err(Error::invalid(
            "replaying sent callbacks needs --force (they were delivered; each goes out again with its webhook-id, so receivers can tell) (nothing was changed)",
        ));
    }
    let (matched, left_out) = callbacks::count_selected(db, &selection)?;
    let changing = matched - left_out.uncaptured - left_out.hook_removed;
    let left = left_out_text(left_out);
    let would = format!("would put {changing} callback(s) back to waiting, due now{left}");
    if says_instead(filter, &selection, matched, &would) {
        return Ok(());
    }
    let (mut waiting, mut rerendered) = (0, 0);
    let busy = in_batches(db, &selection, changing, |db, free| {
        let retried = callbacks::retry(db, free, how.with_current_hook)?;
        waiting += retried.waiting;
        rerendered += retried.rerendered;
        Ok(())
    })?;
    println!(
        "{waiting} callback(s) waiting again, due now{}{left}{}",
        rendered_text(rerendered),
        busy_text(busy)
    );
    Ok(())
}

pub fn cancel(db: &mut Db, ids: &[i64], filter: &OperatorFilter) -> Result<()> {
    let example = "httphooks callbacks cancel --hook NAME --since 1h";
    let Some(selection) = selection(db, ids, filter, None, Status::Waiting, example)? else {
        return cancel_ids(db, ids, filter.dry_run);
    };
    let (matched, _) = callbacks::count_selected(db, &selection)?;
    let would = format!(
        "would cancel up to {matched} waiting callback(s) (those a run has started are left to it)"
    );
    if says_instead(filter, &selection, matched, &would) {
        return Ok(());
    }
    let mut cancelled = 0;
    in_batches(db, &selection, matched, |db, free| {
        cancelled += callbacks::cancel(db, callbacks::Which::Ids(free), "cancelled by operator")?;
        Ok(())
    })?;
    let in_flight = matched as usize - cancelled.min(matched as usize);
    println!(
        "cancelled {cancelled} callback(s){}",
        match in_flight {
            0 => String::new(),
            n => format!(
                "; {n} were being sent by a run (or were sent meanwhile) and are left to it"
            ),
        }
    );
    Ok(())
}

/// Where a filter changes nothing (it matches nothing, or `--dry-run`): says so, and
/// that it did.
fn says_instead(filter: &OperatorFilter, selection: &Selection, matched: i64, would: &str) -> bool {
    if matched == 0 {
        println!(
            "no callback matches {}; nothing was changed",
            described(filter, selection)
        );
    } else if filter.dry_run {
        println!("{would} (dry run: nothing was changed)");
    }
    matched == 0 || filter.dry_run
}

/// Goes through what `selection` takes, [`BATCH`] ids at a time, each batch one
/// transaction in which `change` gets the ids no run holds locked; shows progress on a
/// terminal. Returns how many a run held (left as they are).
fn in_batches(
    db: &mut Db,
    selection: &Selection,
    expected: i64,
    mut change: impl FnMut(&mut Db, &[i64]) -> Result<()>,
) -> Result<usize> {
    let progress = progress_bar(expected);
    let (mut busy, mut after) = (0, 0);
    loop {
        let batch = callbacks::select_batch(db, selection, after, BATCH)?;
        let Some(&last) = batch.last() else { break };
        busy += db.write_transaction(|db| {
            let free = db.backend().lock_unheld(&batch)?;
            change(db, &free)?;
            Ok(batch.len() - free.len())
        })?;
        progress.inc(batch.len() as u64);
        after = last;
    }
    progress.finish_and_clear();
    Ok(busy)
}

/// The filter as a selection, or None when callbacks are named by id. Refuses both at
/// once, and neither (that would take every callback).
fn selection(
    db: &mut Db,
    ids: &[i64],
    filter: &OperatorFilter,
    status: Option<Status>,
    default_status: Status,
    example: &str,
) -> Result<Option<Selection>> {
    let filtered = !filter.hook.is_empty()
        || filter.made.since.is_some()
        || filter.made.until.is_some()
        || status.is_some();
    match (ids.is_empty(), filtered) {
        (false, true) => {
            return Err(Error::invalid(
                "name callbacks by id or choose them with filters, not both (nothing was changed)",
            ))
        }
        (false, false) => return Ok(None),
        (true, false) => {
            return Err(Error::invalid(format!(
                "say which callbacks: give their ids, or choose them with filters, e.g. `{example}` (nothing was changed)"
            )))
        }
        (true, true) => filter.made.check()?,
    }
    let mut hook_ids = Vec::new();
    for name in &filter.hook {
        match hooks::find(db, name)? {
            Some(hook) => hook_ids.push(hook.id),
            None => {
                return Err(Error::invalid(format!(
                    "there is no hook named {name:?}; `httphooks hooks list` shows the hooks (nothing was changed)"
                )))
            }
        }
    }
    let status = status.unwrap_or(default_status);
    let cancelling = default_status == Status::Waiting;
    Ok(Some(Selection {
        hook_ids,
        status,
        made_since: filter.made.since,
        made_until: filter.made.until,
        // Retrying what holds no change, or what no hook would send, changes nothing
        // for the better; cancelling the waiting callbacks of a removed hook does.
        only_sendable: !cancelling,
        // A waiting callback a run holds may be on the wire: a retry leaves it to the
        // run (cancelling takes what the run has not started, see `callbacks::cancel`).
        unclaimed_only: !cancelling && status == Status::Waiting,
    }))
}

/// "hook a, status error, made since …": what a filter asked for, to say it matched
/// nothing.
fn described(filter: &OperatorFilter, selection: &Selection) -> String {
    let mut parts = Vec::new();
    if !filter.hook.is_empty() {
        parts.push(format!("hook {}", filter.hook.join(", ")));
    }
    parts.push(format!("status {}", selection.status));
    if let Some(since) = selection.made_since {
        parts.push(format!(
            "made since {} UTC",
            since.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    if let Some(until) = selection.made_until {
        parts.push(format!(
            "made before {} UTC",
            until.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    format!("({})", parts.join(", "))
}

fn left_out_text(left_out: LeftOut) -> String {
    let mut parts = Vec::new();
    if left_out.uncaptured > 0 {
        parts.push(format!(
            "{} hold no change to send (not captured)",
            left_out.uncaptured
        ));
    }
    if left_out.hook_removed > 0 {
        parts.push(format!("{} belong to removed hooks", left_out.hook_removed));
    }
    match parts.is_empty() {
        true => String::new(),
        false => format!("; left alone: {}", parts.join(", ")),
    }
}

/// Callbacks a run had locked when their batch came (claiming or recording them).
fn busy_text(busy: usize) -> String {
    match busy {
        0 => String::new(),
        n => format!(
            "; {n} were being claimed or recorded by a run and are left as they are (run the command again to take them)"
        ),
    }
}

fn rendered_text(rerendered: usize) -> String {
    match rerendered {
        0 => String::new(),
        n => format!("; {n} will be rendered with their hook's current template and content type"),
    }
}

/// A bar on a terminal, nothing in scripts.
fn progress_bar(length: i64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::try_from(length).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} callbacks [{elapsed}]")
            .expect("a valid progress template"),
    );
    bar
}

/// Retry by id: all or nothing.
fn retry_ids(db: &mut Db, ids: &[i64], how: &Retry, dry_run: bool) -> Result<()> {
    require_existing(db, ids)?;
    refuse_in_flight(db, ids)?;
    refuse_uncaptured(db, ids)?;
    refuse_without_hook(db, ids)?;
    if !how.force {
        refuse_sent(db, ids)?;
    }
    if how.with_current_hook {
        refuse_unrenderable(db, ids)?;
    }
    if dry_run {
        println!(
            "would put {} callback(s) back to waiting, due now (dry run: nothing was changed)",
            ids.len()
        );
        return Ok(());
    }
    let retried = db.write_transaction(|db| callbacks::retry(db, ids, how.with_current_hook))?;
    println!(
        "{} callback(s) waiting again, due now{}",
        retried.waiting,
        rendered_text(retried.rerendered)
    );
    Ok(())
}

/// Cancel by id: all or nothing.
fn cancel_ids(db: &mut Db, ids: &[i64], dry_run: bool) -> Result<()> {
    require_existing(db, ids)?;
    refuse_in_flight(db, ids)?;
    if dry_run {
        let mut waiting = 0;
        for id in ids {
            waiting +=
                usize::from(callbacks::get(db, *id)?.is_some_and(|c| c.status == Status::Waiting));
        }
        println!("would cancel {waiting} callback(s) (dry run: nothing was changed)");
        return Ok(());
    }
    let changed = callbacks::cancel(db, callbacks::Which::Ids(ids), "cancelled by operator")?;
    let skipped = ids.len() - changed;
    println!(
        "cancelled {changed} callback(s){}",
        if skipped > 0 {
            format!("; {skipped} were not waiting and stay as they are")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Refuses the whole command when any id does not exist, so nothing half-happens.
fn require_existing(db: &mut Db, ids: &[i64]) -> Result<()> {
    let existing = callbacks::existing_ids(db, ids)?;
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !existing.contains(id))
        .map(i64::to_string)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "no callback has id {}; `httphooks callbacks list` shows them (nothing was changed)",
            missing.join(", ")
        )))
    }
}

/// A callback that was delivered is sent again only when asked for with --force: a
/// retry by mistake would deliver it twice.
/// A callback a run holds right now may be on the wire: putting it back (or cancelling
/// it) would have it sent twice, or sent unrecorded. Refuses the whole command then.
fn refuse_in_flight(db: &mut Db, ids: &[i64]) -> Result<()> {
    let now = crate::storage::now();
    let mut held = Vec::new();
    for id in ids {
        let claimed = callbacks::get(db, *id)?.is_some_and(|c| {
            c.status == Status::Waiting
                && c.claim_token.is_some()
                && c.claimed_until.is_some_and(|until| until > now)
        });
        if claimed {
            held.push(id.to_string());
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "callback {} is being sent by a send_callbacks run right now; try again when that run has recorded it (`httphooks callbacks explain {}` says which run) (nothing was changed)",
        held.join(", "),
        held[0]
    )))
}

/// A callback of a removed hook would wait for ever: no run sends it.
fn refuse_without_hook(db: &mut Db, ids: &[i64]) -> Result<()> {
    for id in ids {
        if let Some(callback) = callbacks::get(db, *id)?.filter(|c| c.hook_enabled.is_none()) {
            return Err(Error::invalid(format!(
                "callback {id} belongs to hook {}, which was removed, so no run would send it; add the hook again and send the change anew (nothing was changed)",
                callback.hook_name
            )));
        }
    }
    Ok(())
}

/// `--with-current-hook` renders with the hook's current template: tried first, so
/// that a template that still does not fit the callback's row refuses the retry and
/// keeps the body stored before.
fn refuse_unrenderable(db: &mut Db, ids: &[i64]) -> Result<()> {
    let mut renderer = crate::payload::Renderer::new();
    for id in ids {
        let Some(callback) = callbacks::get(db, *id)? else {
            continue;
        };
        let Some(hook) = crate::storage::hooks::find_by_id(db, callback.hook_id)? else {
            continue;
        };
        let rendered = Callback {
            payload: None,
            content_type: hook.content.content_type.clone(),
            payload_template: hook.content.payload_template.clone(),
            ..callback
        };
        if let Err(problem) = crate::engine::body_of(&mut renderer, &rendered) {
            return Err(Error::invalid(format!(
                "callback {id} cannot be rendered with hook {}'s current template ({problem}); fix it with `httphooks hooks edit {} --template …` first (nothing was changed)",
                hook.name, hook.name
            )));
        }
    }
    Ok(())
}

/// A callback made for a change that could not be captured has nothing to send.
fn refuse_uncaptured(db: &mut Db, ids: &[i64]) -> Result<()> {
    for id in ids {
        if let Some(callback) = callbacks::get(db, *id)?.filter(Callback::uncaptured) {
            return Err(Error::invalid(format!(
                "callback {id} holds no change to send: {} (nothing was changed)",
                callback.status_details
            )));
        }
    }
    Ok(())
}

/// A delivered callback, or one folded into a newer change of its row (`--coalesce`),
/// goes out again only with --force.
fn refuse_sent(db: &mut Db, ids: &[i64]) -> Result<()> {
    let mut sent = Vec::new();
    for id in ids {
        if callbacks::get(db, *id)?
            .is_some_and(|c| matches!(c.status, Status::Sent | Status::Superseded))
        {
            sent.push(id.to_string());
        }
    }
    if sent.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "callback {} was already sent or superseded by a newer change of its row; pass --force to send it again (nothing was changed)",
            sent.join(", ")
        )))
    }
}
