//! `enqueue --hook NAME --event TYPE --data JSON`: the insert helper for scripts.

use std::process::ExitCode;

use crate::cli::EnqueueArgs;
use crate::error::{Error, Result};
use crate::payload::{render_body, ContentType, EventContext, Renderer};
use crate::storage::{hooks, Db};

pub fn run(url: Option<&str>, args: &EnqueueArgs) -> Result<ExitCode> {
    let data: serde_json::Value = serde_json::from_str(&args.data).map_err(|e| {
        Error::invalid(format!(
            "--data is not valid JSON ({e}); pass a JSON document"
        ))
    })?;
    let mut db = Db::open_migrated(url)?;
    super::capture::warn(&mut db);
    check_renders(&mut db, args, &data)?;
    let made = crate::enqueue(&mut db, &args.hook, &args.event, &data)?;
    if made == 0 {
        println!("hook {} is disabled: no callback was made", args.hook);
    } else {
        println!("enqueued {made} callback(s) for hook {}", args.hook);
    }
    Ok(ExitCode::SUCCESS)
}

/// The hook's template must render this data: a callback that can never be sent is
/// refused now (exit 2, nothing enqueued) rather than failing later in a cron run.
fn check_renders(db: &mut Db, args: &EnqueueArgs, data: &serde_json::Value) -> Result<()> {
    // An unknown hook, a table hook or an event it does not take is reported by
    // `enqueue` itself; a disabled hook makes no callback to render.
    let Some(hook) = hooks::find(db, &args.hook)? else {
        return Ok(());
    };
    if !hook.enabled || hook.table_name.is_some() || !hook.event_list().contains(&args.event) {
        return Ok(());
    }
    let Some(content_type) = ContentType::parse(&hook.content.content_type) else {
        return Ok(());
    };
    let context = EventContext::custom(&hook.name, &args.event, data.clone());
    render_body(
        &mut Renderer::new(),
        hook.content.payload_template.as_deref(),
        content_type,
        &context,
    )
    .map(|_| ())
    .map_err(|problem| {
        Error::invalid(format!(
            "hook {}'s template cannot render this --data: {problem}; fix the data or the template (nothing was enqueued)",
            hook.name
        ))
    })
}
