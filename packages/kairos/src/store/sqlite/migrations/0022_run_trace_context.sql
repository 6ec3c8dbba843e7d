-- migration: expand; release: 0.2.0
-- The W3C trace context a run continues (docs/tracing.md): JSON {traceparent, tracestate?} of the
-- span that created it (the API request of a manual trigger, the fire of a scheduled one); null when
-- the node had no tracing SDK registered.
ALTER TABLE runs ADD COLUMN trace_context TEXT;
