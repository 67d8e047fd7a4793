-- Hardening: what a narrowed grantee's feed may show, whom denials are shown
-- to, what a webhook loses when a dataset goes, and indexes behind every
-- foreign key.

-- Each change remembers the record as it was before it (`prev`, SQL NULL when
-- the record did not exist), so a grant narrowed by a row filter can tell
-- visible->hidden (a delete) from hidden->hidden (nothing), and a grant
-- narrowed to some fields can tell that only hidden fields changed (nothing).
-- Changes written before this migration know their previous state only when
-- the change before them is still in the log: `prev_known` says so.
ALTER TABLE changes
    ADD COLUMN prev jsonb,
    ADD COLUMN prev_known boolean NOT NULL DEFAULT true;

WITH ordered AS (
    SELECT dataset_id, seq,
           lag(data) OVER w AS before,
           lag(seq) OVER w AS before_seq
    FROM changes
    WINDOW w AS (PARTITION BY dataset_id, record_id ORDER BY seq)
)
UPDATE changes c
SET prev = o.before,
    prev_known = (o.before_seq IS NOT NULL OR (c.version = 1 AND c.op = 'upsert'))
FROM ordered o
WHERE o.dataset_id = c.dataset_id AND o.seq = c.seq;

-- A denial is filed under the actor's organisation (org_id) and, when it
-- targeted a dataset, under the organisation that owns it, whose admins see it.
ALTER TABLE audit_log ADD COLUMN target_org_id uuid;
CREATE INDEX audit_log_target_org_idx ON audit_log (target_org_id, id)
    WHERE target_org_id IS NOT NULL;

-- Datasets a webhook followed until they were deleted: [{dataset, removed_at, reason}].
ALTER TABLE webhooks ADD COLUMN removed_datasets jsonb NOT NULL DEFAULT '[]';

-- Deleting a dataset, an app or a key must find its dependants by index, not by a scan.
CREATE INDEX webhook_deliveries_dataset_idx ON webhook_deliveries (dataset_id);
CREATE INDEX grants_app_idx ON grants (app_id);
CREATE INDEX access_requests_grant_idx ON access_requests (grant_id);
CREATE INDEX api_keys_rotated_from_idx ON api_keys (rotated_from);

-- A dataset a webhook follows is deleted: the webhook says so (removed_datasets,
-- the last 20 kept) instead of silently following nothing; one left following
-- nothing is disabled with that reason. The webhook's organisation sees it in
-- its audit log. A trigger, so that no path deleting a dataset can skip it.
CREATE FUNCTION webhooks_lose_dataset() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hook record;
    alone boolean;
BEGIN
    FOR hook IN
        SELECT w.id, w.app_id, a.org_id, w.disabled_at
        FROM webhook_datasets wd
        JOIN webhooks w ON w.id = wd.webhook_id
        JOIN apps a ON a.id = w.app_id
        WHERE wd.dataset_id = OLD.id
        FOR UPDATE OF w
    LOOP
        alone := NOT EXISTS (
            SELECT 1 FROM webhook_datasets o WHERE o.webhook_id = hook.id AND o.dataset_id <> OLD.id
        );
        UPDATE webhooks SET
            removed_datasets = (CASE WHEN jsonb_array_length(removed_datasets) >= 20
                                     THEN removed_datasets - 0 ELSE removed_datasets END)
                || jsonb_build_array(jsonb_build_object(
                       'dataset', OLD.name, 'removed_at', now(), 'reason', 'the dataset was deleted')),
            disabled_at = CASE WHEN alone THEN coalesce(disabled_at, now()) ELSE disabled_at END,
            disabled_reason = CASE WHEN alone AND disabled_at IS NULL
                                   THEN format('the dataset %s it followed was deleted', OLD.name)
                                   ELSE disabled_reason END,
            updated_at = now()
        WHERE id = hook.id;
        INSERT INTO audit_log (actor, app_id, org_id, action, target, outcome, details)
        VALUES ('system:catalog', hook.app_id, hook.org_id, 'webhook.dataset_removed',
                'webhook:' || hook.id, 'success',
                jsonb_build_object('dataset', OLD.name, 'disabled', alone AND hook.disabled_at IS NULL));
    END LOOP;
    RETURN OLD;
END;
$$;
CREATE TRIGGER datasets_leave_webhooks
    BEFORE DELETE ON datasets
    FOR EACH ROW EXECUTE FUNCTION webhooks_lose_dataset();
