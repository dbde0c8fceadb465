# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_httphooks_global_optspecs
    string join \n database-url= h/help V/version
end

function __fish_httphooks_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_httphooks_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_httphooks_using_subcommand
    set -l cmd (__fish_httphooks_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c httphooks -n "__fish_httphooks_needs_command" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_needs_command" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_needs_command" -s V -l version -d 'Print version'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "migrate" -d 'Create or upgrade httphooks\' tables (idempotent)'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "send_callbacks" -d 'Deliver due callbacks over HTTP, recording every attempt'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "send-callbacks" -d 'Deliver due callbacks over HTTP, recording every attempt'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "monitor_callbacks" -d 'Exit 1 when more callbacks of a status than the limit changed recently'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "monitor-callbacks" -d 'Exit 1 when more callbacks of a status than the limit changed recently'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "delete_old_callbacks" -d 'Delete finished callbacks (and their attempts) older than DAYS days'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "delete-old-callbacks" -d 'Delete finished callbacks (and their attempts) older than DAYS days'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "hooks" -d 'Manage hooks'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "callbacks" -d 'Inspect, retry or cancel callbacks'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "enqueue" -d 'Enqueue a custom event for a hook (an insert helper for scripts)'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "status" -d 'Every hook\'s queue, errors, latency and endpoint, and the recent runs, on one screen'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "completions" -d 'Print a shell completion script (see README: Installing)'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "man" -d 'Print the man page (roff): httphooks(1), or a subcommand\'s, as `httphooks man send_callbacks` or `httphooks man hooks add`'
complete -c httphooks -n "__fish_httphooks_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c httphooks -n "__fish_httphooks_using_subcommand migrate" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand migrate" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l hook_id -l hook-id -d 'Only callbacks of this hook, by id or name (repeatable)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l callback -l callbacks -d 'Only these callbacks, sent even if their retry time has not come' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l limit -d 'Claim at most N callbacks in this run' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l concurrency -d 'Requests in flight at once' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l max-runtime -l max_runtime -d 'Stop claiming after this long (e.g. 50s, 5m), so cron runs never pile up' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l metrics-file -l metrics_file -d 'At the end of the run, write Prometheus metrics (node_exporter textfile format) to this file, atomically; one that cannot be written is a warning. Without the flag, the variable HTTPHOOKS_METRICS_FILE names it (empty: none)' -r -F
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l follow -d 'Once the queue is drained, wait for new callbacks and send each as it commits, until --max-runtime (which it needs); run it from cron every minute with `--max-runtime 65s` and the next run takes over'
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -l dry-run -l dry_run -d 'Print the requests that would be sent for the oldest due callbacks (1,000, or --limit); change nothing'
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -s q -l quiet -d 'Print nothing but errors'
complete -c httphooks -n "__fish_httphooks_using_subcommand send_callbacks" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l hook_id -l hook-id -d 'Only callbacks of this hook, by id or name (repeatable)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l callback -l callbacks -d 'Only these callbacks, sent even if their retry time has not come' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l limit -d 'Claim at most N callbacks in this run' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l concurrency -d 'Requests in flight at once' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l max-runtime -l max_runtime -d 'Stop claiming after this long (e.g. 50s, 5m), so cron runs never pile up' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l metrics-file -l metrics_file -d 'At the end of the run, write Prometheus metrics (node_exporter textfile format) to this file, atomically; one that cannot be written is a warning. Without the flag, the variable HTTPHOOKS_METRICS_FILE names it (empty: none)' -r -F
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l follow -d 'Once the queue is drained, wait for new callbacks and send each as it commits, until --max-runtime (which it needs); run it from cron every minute with `--max-runtime 65s` and the next run takes over'
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -l dry-run -l dry_run -d 'Print the requests that would be sent for the oldest due callbacks (1,000, or --limit); change nothing'
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -s q -l quiet -d 'Print nothing but errors'
complete -c httphooks -n "__fish_httphooks_using_subcommand send-callbacks" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l status -d 'The status to count' -r -f -a "waiting\t''
error\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l callbacks_limit -l callbacks-limit -d 'Exit 1 when the count is greater than this' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l minutes_ago -l minutes-ago -d 'Count only callbacks changed in the last M minutes (all of them without it)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l lag -d 'Exit 1 when the oldest due callback has waited longer than this (a stopped cron, a stuck run, a dead endpoint)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l no-run-since -l no_run_since -d 'Exit 1 when no send_callbacks run finished in this time (a dead man\'s switch)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l warning -d '--nagios with one check: WARNING above this (in the check\'s unit: callbacks or minutes)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l critical -d '--nagios with one check: CRITICAL above this (default: the check\'s own limit)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -l nagios -d 'Nagios plugin output: one status line with performance data, exit 0/1/2/3'
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor_callbacks" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l status -d 'The status to count' -r -f -a "waiting\t''
error\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l callbacks_limit -l callbacks-limit -d 'Exit 1 when the count is greater than this' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l minutes_ago -l minutes-ago -d 'Count only callbacks changed in the last M minutes (all of them without it)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l lag -d 'Exit 1 when the oldest due callback has waited longer than this (a stopped cron, a stuck run, a dead endpoint)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l no-run-since -l no_run_since -d 'Exit 1 when no send_callbacks run finished in this time (a dead man\'s switch)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l warning -d '--nagios with one check: WARNING above this (in the check\'s unit: callbacks or minutes)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l critical -d '--nagios with one check: CRITICAL above this (default: the check\'s own limit)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -l nagios -d 'Nagios plugin output: one status line with performance data, exit 0/1/2/3'
complete -c httphooks -n "__fish_httphooks_using_subcommand monitor-callbacks" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand delete_old_callbacks" -l days -d 'The same as DAYS, as a flag' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand delete_old_callbacks" -l batch-size -d 'Callbacks deleted per transaction at most (one range of this many ids)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand delete_old_callbacks" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand delete_old_callbacks" -l include-waiting -l include_waiting -d 'Delete waiting callbacks too (they are kept by default)'
complete -c httphooks -n "__fish_httphooks_using_subcommand delete_old_callbacks" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand delete-old-callbacks" -l days -d 'The same as DAYS, as a flag' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand delete-old-callbacks" -l batch-size -d 'Callbacks deleted per transaction at most (one range of this many ids)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand delete-old-callbacks" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand delete-old-callbacks" -l include-waiting -l include_waiting -d 'Delete waiting callbacks too (they are kept by default)'
complete -c httphooks -n "__fish_httphooks_using_subcommand delete-old-callbacks" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "add" -d 'Create a hook (and its table\'s triggers)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "list" -d 'List hooks'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "show" -d 'Show one hook'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "edit" -d 'Change a hook; only the flags given change'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "enable" -d 'Enable a hook: its events create callbacks again'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "disable" -d 'Disable a hook: its events create no callbacks'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "remove" -d 'Remove a hook (and its table\'s triggers when it was the last hook there)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "sync" -d 'Re-create triggers after a table\'s columns changed: every watched table, or the one a hook watches, or a table named directly. Goes on past tables that are gone and then exits 3'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "triggers" -d 'Print the SQL that creates a watched table\'s triggers for its current columns, or with --drop the SQL that drops them (for a migration that changes the table)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "test" -d 'Build the request a real event would produce and show it (--dry-run) or send it once; nothing is written to the callbacks table'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "backfill" -d 'Make a callback (event `backfill`, shaped like an insert\'s) for every existing row of the hook\'s table, in key order, a batch at a time'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and not __fish_seen_subcommand_from add list show edit enable disable remove sync triggers test backfill help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l table -d 'The table whose row changes fire the hook (omit for custom events)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l events -d 'Comma-separated: insert, update, delete, or custom names like attempt.submitted' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l url -d 'The absolute http(s) URL to send to' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l method -d 'POST, PUT, PATCH, DELETE or GET [new hooks: POST]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l header -d '\'Name: value\' (repeatable, or a JSON object); ${VAR} is read from the environment at send time' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l content-type -d 'application/json, application/xml, application/x-www-form-urlencoded or text/plain [new hooks: application/json]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l template -d 'The payload template (see README: Hooks, triggers and payloads)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l template-file -d 'Read the payload template from a file' -r -F
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l key -d 'Comma-separated columns that identify a row (object_id), for a table without a primary key; every hook of a table must use the same key' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l when-changed -d 'Comma-separated columns: an update fires only if one of them changed' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l timeout -d 'Request timeout, e.g. 1500ms [new hooks: 10s]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l max-attempts -d 'Attempts before a callback becomes an error [new hooks: 8]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l max-payload-size -d 'The most one callback may hold, its change\'s data and its body, e.g. 1MB, 512KB: a larger one fails alone, at once, saying why [new hooks: 10MB]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l auth -d 'How to authenticate: none, basic, bearer or oauth2-client-credentials' -r -f -a "none\t''
basic\t''
bearer\t''
oauth2-client-credentials\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l username-env -d 'basic: the variable holding the user name' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l password-env -d 'basic: the variable holding the password' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l token-env -d 'bearer: the variable holding the token' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l token-url -d 'oauth2-client-credentials: the token endpoint' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l client-id-env -d 'oauth2-client-credentials: the variable holding the client id' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l client-secret-env -d 'oauth2-client-credentials: the variable holding the client secret' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l scope -d 'oauth2-client-credentials: the scope to ask for' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l audience -d 'oauth2-client-credentials: the audience to ask for' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l signing-secret-env -d 'Sign requests (Standard Webhooks) with the whsec_ secret(s) in this variable; several, separated by spaces, during a rotation' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l ca-file -d 'Trust this CA certificate file (PEM) for the target, besides the usual roots' -r -F
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l batch-size -d 'Send up to N waiting callbacks in one request, as a JSON array of their payloads in callback order (application/json hooks; 1 sends each payload alone)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l sample-data -d 'Sample data (JSON) to validate a custom-event hook\'s template against' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l ordered -d 'Deliver callbacks of the same row (of the hook, for custom events) one at a time, in the order they were made, even with concurrency'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l coalesce -d 'Of the waiting changes of a row, send only the newest: older inserts and updates not yet attempted are marked superseded (a delete is always sent)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -l disabled -d 'Create the hook disabled'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from list" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from list" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from show" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from show" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l table -d 'The table whose row changes fire the hook (omit for custom events)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l events -d 'Comma-separated: insert, update, delete, or custom names like attempt.submitted' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l url -d 'The absolute http(s) URL to send to' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l method -d 'POST, PUT, PATCH, DELETE or GET [new hooks: POST]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l header -d '\'Name: value\' (repeatable, or a JSON object); ${VAR} is read from the environment at send time' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l content-type -d 'application/json, application/xml, application/x-www-form-urlencoded or text/plain [new hooks: application/json]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l template -d 'The payload template (see README: Hooks, triggers and payloads)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l template-file -d 'Read the payload template from a file' -r -F
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l key -d 'Comma-separated columns that identify a row (object_id), for a table without a primary key; every hook of a table must use the same key' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l when-changed -d 'Comma-separated columns: an update fires only if one of them changed' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l timeout -d 'Request timeout, e.g. 1500ms [new hooks: 10s]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l max-attempts -d 'Attempts before a callback becomes an error [new hooks: 8]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l max-payload-size -d 'The most one callback may hold, its change\'s data and its body, e.g. 1MB, 512KB: a larger one fails alone, at once, saying why [new hooks: 10MB]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l auth -d 'How to authenticate: none, basic, bearer or oauth2-client-credentials' -r -f -a "none\t''
basic\t''
bearer\t''
oauth2-client-credentials\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l username-env -d 'basic: the variable holding the user name' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l password-env -d 'basic: the variable holding the password' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l token-env -d 'bearer: the variable holding the token' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l token-url -d 'oauth2-client-credentials: the token endpoint' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l client-id-env -d 'oauth2-client-credentials: the variable holding the client id' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l client-secret-env -d 'oauth2-client-credentials: the variable holding the client secret' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l scope -d 'oauth2-client-credentials: the scope to ask for' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l audience -d 'oauth2-client-credentials: the audience to ask for' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l signing-secret-env -d 'Sign requests (Standard Webhooks) with the whsec_ secret(s) in this variable; several, separated by spaces, during a rotation' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l ca-file -d 'Trust this CA certificate file (PEM) for the target, besides the usual roots' -r -F
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l batch-size -d 'Send up to N waiting callbacks in one request, as a JSON array of their payloads in callback order (application/json hooks; 1 sends each payload alone)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l sample-data -d 'Sample data (JSON) to validate a custom-event hook\'s template against' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l rename -d 'Give the hook a new name' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l ordered -d 'Deliver callbacks of the same row (of the hook, for custom events) one at a time, in the order they were made, even with concurrency'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l coalesce -d 'Of the waiting changes of a row, send only the newest: older inserts and updates not yet attempted are marked superseded (a delete is always sent)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l clear-headers -d 'Remove all headers (before adding any given with --header)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l no-template -d 'Remove the template: send the default payload'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l no-signing -d 'Stop signing requests'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l no-ca-file -d 'Trust only the usual roots again'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l no-ordered -d 'Deliver in any order again'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l no-when-changed -d 'Fire on every update again'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -l no-coalesce -d 'Send every change again, not only a row\'s newest'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from edit" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from enable" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from disable" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from remove" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from remove" -l force -d 'Remove even when callbacks are still waiting (they are cancelled)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from sync" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from triggers" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from triggers" -l drop -d 'Print the SQL that drops the triggers instead'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from triggers" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from test" -l event -d 'The event to simulate (default: the hook\'s first)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from test" -l data -d 'The row (table hooks, over a sample row) or the event data (custom events), as JSON' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from test" -l to -d 'Send to this URL instead of the hook\'s' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from test" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from test" -l dry-run -l dry_run -d 'Show the request, with how it would authenticate; send nothing'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from test" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from backfill" -l where -d 'Only rows where this SQL condition on the table\'s columns holds (e.g. "created_at > \'2026-01-01\'")' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from backfill" -l chunk-size -l chunk_size -d 'Rows per batch; each batch is one short transaction' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from backfill" -l after -d 'Go on after this key (a JSON array, as a stopped backfill prints it)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from backfill" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from backfill" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create a hook (and its table\'s triggers)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "list" -d 'List hooks'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one hook'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "edit" -d 'Change a hook; only the flags given change'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable a hook: its events create callbacks again'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable a hook: its events create no callbacks'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a hook (and its table\'s triggers when it was the last hook there)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "sync" -d 'Re-create triggers after a table\'s columns changed: every watched table, or the one a hook watches, or a table named directly. Goes on past tables that are gone and then exits 3'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "triggers" -d 'Print the SQL that creates a watched table\'s triggers for its current columns, or with --drop the SQL that drops them (for a migration that changes the table)'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "test" -d 'Build the request a real event would produce and show it (--dry-run) or send it once; nothing is written to the callbacks table'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "backfill" -d 'Make a callback (event `backfill`, shaped like an insert\'s) for every existing row of the hook\'s table, in key order, a batch at a time'
complete -c httphooks -n "__fish_httphooks_using_subcommand hooks; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -f -a "list" -d 'List callbacks, newest first; or count them per hook and failure reason'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -f -a "show" -d 'Show one callback with its attempts'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -f -a "explain" -d 'Why a callback is or is not being sent now, and the command that changes it'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -f -a "retry" -d 'Put callbacks back to waiting, due now: by id, or all that match the filters (failed ones unless --status says otherwise). Those that never rendered (nothing was sent for them) are rendered with their hook\'s current template'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -f -a "cancel" -d 'Cancel waiting callbacks (they become errors and are not sent): by id, or all waiting ones that match the filters'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and not __fish_seen_subcommand_from list show explain retry cancel help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l status -d 'waiting, sent, error or superseded (--coalesce); held lists the waiting callbacks of disabled hooks' -r -f -a "waiting\t''
held\t''
sent\t''
error\t''
superseded\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l hook -d 'Only callbacks of the hook with this name' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l since -d 'Only callbacks made at or after this (a span ago, e.g. 6h, 2d; or a UTC time)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l until -d 'Only callbacks made before this (a span ago or a UTC time)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l limit -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l group-by -l group_by -d 'Count the callbacks instead of listing them: per hook, per reason (the outcome without its attempt numbers), or both (`hook,reason`)' -r -f -a "hook\t''
reason\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from show" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from show" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from explain" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from explain" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from explain" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l hook -d 'Only callbacks of the hook with this name (repeatable)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l since -d 'Only callbacks made at or after this (a span ago, e.g. 6h, 2d; or a UTC time)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l until -d 'Only callbacks made before this (a span ago or a UTC time)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l status -d 'error (the default with filters), waiting (backing off: due now, with a fresh budget of attempts) or sent (a replay: needs --force)' -r -f -a "error\t''
waiting\t''
sent\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l dry-run -l dry_run -d 'Say how many callbacks would change, and change nothing'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l force -d 'Send callbacks that were already sent once more (the same webhook-id, so receivers can tell)'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -l with-current-hook -l with_current_hook -d 'Render the body again with the hook\'s current template and content type, even for callbacks that were rendered (and perhaps sent) before'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from cancel" -l hook -d 'Only callbacks of the hook with this name (repeatable)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from cancel" -l since -d 'Only callbacks made at or after this (a span ago, e.g. 6h, 2d; or a UTC time)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from cancel" -l until -d 'Only callbacks made before this (a span ago or a UTC time)' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from cancel" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from cancel" -l dry-run -l dry_run -d 'Say how many callbacks would change, and change nothing'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from help" -f -a "list" -d 'List callbacks, newest first; or count them per hook and failure reason'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one callback with its attempts'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from help" -f -a "explain" -d 'Why a callback is or is not being sent now, and the command that changes it'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from help" -f -a "retry" -d 'Put callbacks back to waiting, due now: by id, or all that match the filters (failed ones unless --status says otherwise). Those that never rendered (nothing was sent for them) are rendered with their hook\'s current template'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Cancel waiting callbacks (they become errors and are not sent): by id, or all waiting ones that match the filters'
complete -c httphooks -n "__fish_httphooks_using_subcommand callbacks; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c httphooks -n "__fish_httphooks_using_subcommand enqueue" -l hook -d 'The hook\'s name' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand enqueue" -l event -d 'The custom event, e.g. attempt.submitted' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand enqueue" -l data -d 'The event\'s data as JSON' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand enqueue" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand enqueue" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand status" -l format -d 'Output format' -r -f -a "table\t''
json\t''"
complete -c httphooks -n "__fish_httphooks_using_subcommand status" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand status" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand completions" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand completions" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand man" -l out-dir -d 'Write every page (httphooks.1 and one per subcommand) into this folder instead' -r -F
complete -c httphooks -n "__fish_httphooks_using_subcommand man" -l database-url -d 'The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]' -r
complete -c httphooks -n "__fish_httphooks_using_subcommand man" -s h -l help -d 'Print help'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "migrate" -d 'Create or upgrade httphooks\' tables (idempotent)'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "send_callbacks" -d 'Deliver due callbacks over HTTP, recording every attempt'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "monitor_callbacks" -d 'Exit 1 when more callbacks of a status than the limit changed recently'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "delete_old_callbacks" -d 'Delete finished callbacks (and their attempts) older than DAYS days'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "hooks" -d 'Manage hooks'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "callbacks" -d 'Inspect, retry or cancel callbacks'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "enqueue" -d 'Enqueue a custom event for a hook (an insert helper for scripts)'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "status" -d 'Every hook\'s queue, errors, latency and endpoint, and the recent runs, on one screen'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "completions" -d 'Print a shell completion script (see README: Installing)'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "man" -d 'Print the man page (roff): httphooks(1), or a subcommand\'s, as `httphooks man send_callbacks` or `httphooks man hooks add`'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and not __fish_seen_subcommand_from migrate send_callbacks monitor_callbacks delete_old_callbacks hooks callbacks enqueue status completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "add" -d 'Create a hook (and its table\'s triggers)'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "list" -d 'List hooks'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "show" -d 'Show one hook'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "edit" -d 'Change a hook; only the flags given change'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "enable" -d 'Enable a hook: its events create callbacks again'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "disable" -d 'Disable a hook: its events create no callbacks'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "remove" -d 'Remove a hook (and its table\'s triggers when it was the last hook there)'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "sync" -d 'Re-create triggers after a table\'s columns changed: every watched table, or the one a hook watches, or a table named directly. Goes on past tables that are gone and then exits 3'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "triggers" -d 'Print the SQL that creates a watched table\'s triggers for its current columns, or with --drop the SQL that drops them (for a migration that changes the table)'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "test" -d 'Build the request a real event would produce and show it (--dry-run) or send it once; nothing is written to the callbacks table'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from hooks" -f -a "backfill" -d 'Make a callback (event `backfill`, shaped like an insert\'s) for every existing row of the hook\'s table, in key order, a batch at a time'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from callbacks" -f -a "list" -d 'List callbacks, newest first; or count them per hook and failure reason'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from callbacks" -f -a "show" -d 'Show one callback with its attempts'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from callbacks" -f -a "explain" -d 'Why a callback is or is not being sent now, and the command that changes it'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from callbacks" -f -a "retry" -d 'Put callbacks back to waiting, due now: by id, or all that match the filters (failed ones unless --status says otherwise). Those that never rendered (nothing was sent for them) are rendered with their hook\'s current template'
complete -c httphooks -n "__fish_httphooks_using_subcommand help; and __fish_seen_subcommand_from callbacks" -f -a "cancel" -d 'Cancel waiting callbacks (they become errors and are not sent): by id, or all waiting ones that match the filters'
