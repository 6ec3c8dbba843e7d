-- migration: expand; release: 0.2.0
-- Alert silences and deliveries belong to a namespace (docs/tenancy.md): a silence to the
-- namespace it was made in (one without a rule silences that namespace's rules only), a delivery
-- to its rule's namespace (a test message: its channel's). Rows from before take their rule's or
-- channel's namespace, else `default`. Nodes of the previous release write `default` (the column's
-- default) until they are upgraded.
ALTER TABLE alert_silences ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE alert_deliveries ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
UPDATE alert_silences SET namespace = (SELECT r.namespace FROM alert_rules r WHERE r.id = alert_silences.rule_id)
  WHERE rule_id IS NOT NULL;
UPDATE alert_deliveries SET namespace = coalesce(
    (SELECT r.namespace FROM alert_rules r WHERE r.name = alert_deliveries.rule_name),
    (SELECT c.namespace FROM alert_channels c WHERE c.name = alert_deliveries.channel_name),
    'default');
-- The history of one namespace, newest first.
CREATE INDEX alert_deliveries_namespace ON alert_deliveries (namespace, id);
