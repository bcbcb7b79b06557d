//! The ledger's statements (see [`super::ledger`]), with the schema filled in, and the
//! low-credit state they keep (migration 10, `meters.low_state`; see
//! [`crate::metering`]'s "Low credits").
//!
//! `low_state` is 0 while armed, 1 once `credits.low` was sent for the current dip, and
//! 2 in the row a statement has just disarmed: the statement that crossed the threshold
//! writes the event into `webhook_outbox` in the same statement (a data-modifying
//! `WITH`), under the row lock of its upsert, so one crossing makes one event however
//! many instances reserve at once. A later statement reads 2 as 1.

/// The ledger's statements.
pub(super) struct LedgerSql {
    pub(super) reserve: String,
    pub(super) adjust: String,
    pub(super) set: String,
    pub(super) release: String,
    pub(super) balance: String,
    pub(super) delete: String,
    /// Every meter of one key (`$1`): its credits and quotas, in the key's deletion.
    pub(super) delete_key_meters: String,
}

/// The balance of row `m` brought to the period in parameter `period`, with parameters
/// `top_up` (a credit top-up amount) and `reset` (a quota's limit), at most one not NULL.
pub(super) fn refilled(period: &str, top_up: &str, reset: &str) -> String {
    format!(
        "(CASE WHEN m.period >= {period}::bigint THEN m.balance \
         WHEN {reset}::bigint IS NOT NULL THEN {reset}::bigint \
         WHEN {top_up}::bigint IS NOT NULL THEN GREATEST(m.balance, LEAST(m.balance::numeric \
         + ({period} - m.period)::numeric * {top_up}::bigint, {top_up}::bigint)::bigint) \
         ELSE m.balance END)"
    )
}

/// What a reservation of `$6` units takes of `balance` with a fair share of `$14` parts:
/// `LEAST($6, max(balance, 0), GREATEST(1, ceil(max(balance, 0) / $14)))`.
fn grant(balance: &str) -> String {
    format!(
        "LEAST($6::bigint, GREATEST({balance}, 0), \
         GREATEST(1, (GREATEST({balance}, 0) + $14::bigint - 1) / $14::bigint))"
    )
}

/// Wraps an upsert that returns `balance, granted, period, low_state, owner_kind,
/// owner_id` so that a crossing (`low_state = 2`) also writes its `credits.low` event:
/// `$9` threshold, `$10` event id, `$11` RFC 3339 time, `$12` now, `$13` deadline (NULL:
/// no event, webhooks are not kept in this store). A key's event names the key as the
/// key events do; a key that no longer exists gets none.
fn with_notice(s: &str, upsert: &str) -> String {
    let data =
        "json_build_object('key_id', k.id, 'account_id', COALESCE(k.account_id, up.owner_id), \
         'name', k.name, 'environment', k.environment, 'actor', NULL, \
         'meter', CASE up.owner_kind WHEN 'key' THEN 'key_credits' ELSE 'account_credits' END, \
         'remaining', GREATEST(up.balance, 0), 'threshold', $9::bigint)";
    format!(
        "WITH up AS ({upsert}), ev AS (INSERT INTO {s}.webhook_outbox (id, event_type, \
         account_id, key_id, body, created_at, next_attempt_at, deadline) \
         SELECT $10::text, 'credits.low', COALESCE(k.account_id, up.owner_id), k.id, \
         json_build_object('type', 'credits.low', 'timestamp', $11::text, 'data', {data})::text, \
         $12::timestamptz, $12::timestamptz, $13::timestamptz \
         FROM up LEFT JOIN {s}.keys k ON up.owner_kind = 'key' AND k.id = up.owner_id \
         WHERE up.low_state = 2 AND $13::timestamptz IS NOT NULL \
         AND (up.owner_kind = 'account' OR k.id IS NOT NULL)) \
         SELECT balance, granted, period FROM up"
    )
}

impl LedgerSql {
    pub(super) fn new(schema: &str) -> Self {
        let s = format!("\"{schema}\"");
        let key = "m.owner_kind = $1 AND m.owner_id = $2 AND m.meter = $3";
        let insert = format!(
            "INSERT INTO {s}.meters AS m (owner_kind, owner_id, meter, balance, period, granted, \
             low_state) VALUES ($1, $2, $3"
        );
        let conflict = "ON CONFLICT (owner_kind, owner_id, meter) DO UPDATE SET";
        let returning = "RETURNING m.balance, m.granted, m.period, m.low_state, m.owner_kind, \
                         m.owner_id";
        // The upserts: $4 initial balance, $5 current period, $6 their operand, $7 top-up,
        // $8 reset, $9 low threshold ($10 to $13: the event's, see `with_notice`); the
        // reservation's $14: the parts of a fair share.
        let r = refilled("$5", "$7", "$8");
        let low = "$9::bigint";
        // The low state before this change: re-armed by a refill that left it above.
        let prior = format!(
            "(CASE WHEN m.period < $5::bigint AND {r} > {low} THEN 0 \
             WHEN m.low_state = 2 THEN 1 ELSE m.low_state END)"
        );
        // A new row starts disarmed when its initial balance is already low.
        let start = format!("(CASE WHEN {low} IS NULL OR $4::bigint > {low} THEN 0 ELSE 1 END)");
        // A reservation takes at most a fair share ($14 parts) of the balance.
        let granted0 = grant("$4::bigint");
        let granted = grant(&r);
        let reserve = format!(
            "{insert}, $4::bigint - {granted0}, $5::bigint, {granted0}, \
             CASE WHEN {start} = 0 AND {granted0} > 0 AND $4::bigint - {granted0} <= {low} \
             THEN 2 ELSE {start} END) \
             {conflict} balance = {r} - {granted}, granted = {granted}, \
             period = GREATEST(m.period, $5), updated_at = now(), \
             low_state = CASE WHEN {low} IS NULL THEN 0 \
             WHEN {granted} > 0 AND {r} - {granted} <= {low} AND {prior} = 0 THEN 2 \
             ELSE {prior} END {returning}"
        );
        // $6: units refunded (negative: charged).
        let adjust = format!(
            "{insert}, $4::bigint + $6::bigint, $5::bigint, 0, \
             CASE WHEN {start} = 0 AND $6::bigint < 0 AND $4::bigint + $6::bigint <= {low} \
             THEN 2 ELSE {start} END) \
             {conflict} balance = {r} + $6, granted = 0, \
             period = GREATEST(m.period, $5), updated_at = now(), \
             low_state = CASE WHEN {low} IS NULL THEN 0 \
             WHEN $6::bigint < 0 AND {r} + $6 <= {low} AND {prior} = 0 THEN 2 \
             WHEN $6::bigint > 0 AND {r} + $6 > {low} THEN 0 \
             ELSE {prior} END {returning}"
        );
        let set_low = "(CASE WHEN $6::bigint IS NULL OR $4::bigint > $6::bigint THEN 0 ELSE 1 END)";
        Self {
            reserve: with_notice(&s, &reserve),
            adjust: with_notice(&s, &adjust),
            // $4: the new balance, as of period $5; $6 the low threshold.
            set: format!(
                "{insert}, $4::bigint, $5::bigint, 0, {set_low}) {conflict} balance = $4, \
                 granted = 0, period = GREATEST(m.period, $5), updated_at = now(), \
                 low_state = {set_low}"
            ),
            // $4: the reservation's period, $5: units returned.
            release: format!(
                "UPDATE {s}.meters AS m SET balance = m.balance + $5::bigint, updated_at = now() \
                 WHERE {key} AND m.period = $4::bigint"
            ),
            // $4 current period, $5 top-up, $6 reset.
            balance: format!(
                "SELECT {} FROM {s}.meters m WHERE {key}",
                refilled("$4", "$5", "$6")
            ),
            delete: format!("DELETE FROM {s}.meters m WHERE {key}"),
            delete_key_meters: format!(
                "DELETE FROM {s}.meters WHERE owner_kind = 'key' AND owner_id = $1"
            ),
        }
    }
}
