// One schema for both backends: only types that SQLite and PostgreSQL share.
// Written by hand to match migrations/{sqlite,postgres}; diesel.toml does not
// generate it (views and the backends' differences are beyond print-schema).

diesel::table! {
    httphooks_hooks (id) {
        id -> BigInt,
        name -> Text,
        table_name -> Nullable<Text>,
        events -> Text,
        enabled -> Bool,
        when_changed -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version_id -> Nullable<BigInt>,
        table_oid -> Nullable<BigInt>,
        key_columns -> Nullable<Text>,
        capture_verified_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    httphooks_hook_versions (id) {
        id -> BigInt,
        hook_id -> BigInt,
        name -> Text,
        table_name -> Nullable<Text>,
        target_url -> Text,
        http_method -> Text,
        headers -> Text,
        content_type -> Text,
        payload_template -> Nullable<Text>,
        timeout_ms -> Integer,
        max_attempts -> Integer,
        auth -> Nullable<Text>,
        signing_secret_env -> Nullable<Text>,
        ca_file -> Nullable<Text>,
        created_at -> Timestamp,
        ordered -> Bool,
        max_payload_size -> BigInt,
        coalesced -> Bool,
        batch_size -> Integer,
    }
}

/// A table of callbacks: `$name` with the columns every callback row has and its own.
macro_rules! callback_table {
    ($(#[$doc:meta])* $name:ident { $($own:tt)* }) => {
        diesel::table! {
            $(#[$doc])*
            $name (id) {
                id -> BigInt,
                hook_id -> BigInt,
                version_id -> BigInt,
                event_type -> Text,
                object_id -> Nullable<Text>,
                payload -> Nullable<Text>,
                event_data -> Text,
                status -> Text,
                status_details -> Text,
                attempts -> Integer,
                next_attempt_at -> Nullable<Timestamp>,
                created_at -> Timestamp,
                updated_at -> Nullable<Timestamp>,
                claimed_until -> Nullable<Timestamp>,
                claim_token -> Nullable<Text>,
                claim_started -> Bool,
                webhook_id -> Nullable<Text>,
                attempts_before_retry -> Integer,
                superseded_by -> Nullable<BigInt>,
                $($own)*
            }
        }
    };
}

callback_table!(httphooks_callbacks { ordered -> Bool, });

callback_table!(
    /// A view: a callback with its hook's name and state and the content of its hook
    /// version (migrations define it); its delivery settings are those of the hook
    /// version `settings_version_id`.
    httphooks_callback_details {
        hook_name -> Text,
        table_name -> Nullable<Text>,
        content_type -> Text,
        payload_template -> Nullable<Text>,
        settings_version_id -> BigInt,
        hook_enabled -> Nullable<Bool>,
    }
);

// Where triggers and enqueue write (their other columns differ per backend): only the
// key is read through diesel, so that a following run's look for new rows is a cached
// prepared statement.
diesel::table! {
    httphooks_new_callbacks (id) {
        id -> BigInt,
    }
}

diesel::table! {
    httphooks_runs (id) {
        id -> BigInt,
        token -> Text,
        host -> Text,
        pid -> Integer,
        process -> Text,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        claimed -> Integer,
        sent -> Integer,
        retried -> Integer,
        failed -> Integer,
        held -> Integer,
        released -> Integer,
        exit_code -> Nullable<Integer>,
        stop_reason -> Nullable<Text>,
        following -> Bool,
        alive_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    httphooks_attempts (id) {
        id -> BigInt,
        callback_id -> BigInt,
        attempt -> Integer,
        started_at -> Timestamp,
        elapsed_ms -> BigInt,
        request_method -> Text,
        request_url -> Text,
        request_headers -> Text,
        request_body -> Text,
        response_status_code -> Nullable<Integer>,
        response_reason -> Nullable<Text>,
        response_headers -> Nullable<Text>,
        response_body -> Nullable<Text>,
        error_kind -> Nullable<Text>,
        error_message -> Nullable<Text>,
        batch -> Nullable<Text>,
        response_body_callback_id -> Nullable<BigInt>,
    }
}

diesel::table! {
    httphooks_oauth_tokens (cache_key) {
        cache_key -> Text,
        access_token -> Text,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    httphooks_oauth_tokens,
    httphooks_hooks,
    httphooks_hook_versions,
    httphooks_callbacks,
    httphooks_callback_details,
    httphooks_attempts,
    httphooks_runs,
    httphooks_run_hooks,
    httphooks_run_endpoints
);

diesel::table! {
    httphooks_run_hooks (run_id, hook_id) {
        run_id -> BigInt,
        hook_id -> BigInt,
        sent -> Integer,
        retried -> Integer,
        failed -> Integer,
        last_success_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    httphooks_run_endpoints (run_id, endpoint) {
        run_id -> BigInt,
        endpoint -> Text,
        requests -> Integer,
        failures -> Integer,
        concurrency_limit -> Integer,
        latency_counts -> Text,
        latency_sum_ms -> BigInt,
    }
}
