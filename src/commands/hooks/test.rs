//! `hooks test`: the request a real event would produce, shown or sent once.

use std::process::ExitCode;

use serde_json::Value;

use super::definition::check_url;
use crate::cli::HookTestArgs;
use crate::commands::output::say;
use crate::delivery::headers::shown_response_headers;
use crate::delivery::{prepare, shown_headers, Deliverer};
use crate::engine::DatabaseTokens;
use crate::error::{Error, Result};
use crate::payload::{render_sample, ContentType, EventContext, Renderer};
use crate::storage::{hooks, Connector, Db};

/// `hooks test`: the request a real event would produce, shown or sent once. Nothing
/// is written to the callbacks table.
pub(super) fn test(db: &mut Db, url: Option<&str>, args: &HookTestArgs) -> Result<ExitCode> {
    let hook = hooks::require(db, &args.name)?;
    let events = hook.event_list();
    let event = args.event.clone().unwrap_or_else(|| events[0].clone());
    if !events.contains(&event) {
        return Err(Error::invalid(format!(
            "hook {} does not take {event:?} events (it takes {}); pick one with --event",
            hook.name,
            events.join(", ")
        )));
    }
    let data: Option<Value> = match &args.data {
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            Error::invalid(format!(
                "--data is not valid JSON ({e}); pass a JSON document"
            ))
        })?),
        None => None,
    };
    let content_type = ContentType::parse(&hook.content.content_type).ok_or_else(|| {
        Error::invalid(format!(
            "hook {} has an unsupported content type; fix it with hooks edit",
            hook.name
        ))
    })?;
    let mut renderer = Renderer::new();
    let (context, columns) = match &hook.table_name {
        Some(table) => {
            let columns = db
                .backend()
                .find_table(table)?
                .map(|t| t.columns)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "table {table} no longer exists; remove the hook or re-create the table"
                    ))
                })?;
            let mut context = EventContext::sample(&hook.name, table, &event, &columns);
            // Given values replace the sample's, column by column.
            if let (Some(Value::Object(given)), Some(Value::Object(row))) =
                (&data, &mut context.instance)
            {
                for (key, value) in given {
                    row.insert(key.clone(), value.clone());
                }
                if context.old.is_some() {
                    context.old = context.instance.clone();
                }
            }
            (context, columns)
        }
        None => {
            let mut context = EventContext::sample(&hook.name, "", &event, &[]);
            context.table = None;
            context.instance = None;
            context.old = None;
            context.object_id = None;
            context.data = Some(data.unwrap_or_else(|| Value::Object(Default::default())));
            (context, Vec::new())
        }
    };
    let body = render_sample(
        &mut renderer,
        hook.content.payload_template.as_deref(),
        content_type,
        &context,
        &columns,
    )
    .map_err(|problem| {
        Error::invalid(format!("hook {}: {problem}; fix the template", hook.name))
    })?;
    // A batch hook's receiver takes arrays: the sample goes as a batch of one.
    let batch = hook.settings.batch_size > 1 && content_type == ContentType::Json;
    let (body, webhook_id) = if batch {
        (format!("[{body}]"), "batch_test_test")
    } else {
        (body, "msg_test")
    };
    if let Some(to) = &args.to {
        check_url("--to", to)?;
    }
    let mut target = hook.settings.clone();
    if let Some(to) = &args.to {
        target.target_url = to.clone();
    }
    let prepared = prepare(&target, &hook.content.content_type, webhook_id, &body);
    if args.dry_run {
        let unset = match &prepared {
            Ok(_) => Vec::new(),
            Err(problem) => problem.variables.clone(),
        };
        // A dry run shows the request even where a variable is unset, as the value
        // it stands for; a real send refuses.
        for variable in &unset {
            std::env::set_var(variable, format!("[unset: {variable}]"));
        }
        let shown = prepare(&target, &hook.content.content_type, webhook_id, &body)
            .map_err(|problem| Error::environment(format!("{problem}; set it and try again")))?;
        println!("{}", shown.as_text());
        for variable in &unset {
            println!("# {variable} is unset here: send_callbacks would hold this hook's callbacks until it is set");
        }
        println!("dry run: nothing was sent");
        return Ok(ExitCode::SUCCESS);
    }
    let prepared = prepared
        .map_err(|problem| Error::environment(format!("{problem}; set it and try again")))?;
    let deliverer = Deliverer::new(1, DatabaseTokens::boxed(&Connector::new(url)?))?;
    let mut ok = true;
    for exchange in deliverer.send(&prepared, &|| true) {
        say!("> {} {}", exchange.request.method, exchange.request.url);
        for (name, value) in shown_headers(&exchange.request) {
            say!("> {name}: {value}");
        }
        match &exchange.result {
            Ok(response) => {
                say!(
                    "< {} {} ({} ms)",
                    response.status,
                    response.reason,
                    exchange.elapsed.as_millis()
                );
                for (name, value) in shown_response_headers(&response.headers) {
                    say!("< {name}: {value}");
                }
                say!("<\n{}", response.body);
                ok = (200..300).contains(&response.status);
            }
            Err(failure) => {
                say!("! {}: {}", failure.kind.as_str(), failure.message);
                ok = false;
            }
        }
    }
    // The test itself worked; a refusing target is what it reports, with exit 1.
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
