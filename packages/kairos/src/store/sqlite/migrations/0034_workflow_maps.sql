-- migration: expand; release: 0.2.0
-- Map steps and step failure reasons (docs/workflows.md#map-and-reduce). A map step's items are
-- written in the transaction that makes the step ready, all at once, so that an item is neither
-- lost nor queued twice whatever node ends which item run: each item run's end marks its item and
-- queues the next waiting ones under the instance's lock. `item` is the list's element (JSON),
-- `result` the item run's result once it succeeded.
CREATE TABLE workflow_map_items (
  instance_id  INTEGER NOT NULL REFERENCES workflow_instances (id) ON DELETE CASCADE,
  step_id      TEXT    NOT NULL,
  idx          INTEGER NOT NULL,
  item         TEXT    NOT NULL,
  -- waiting | ready (its run queued or running) | succeeded | failed | skipped | cancelled
  state        TEXT    NOT NULL,
  run_id       INTEGER,
  result       TEXT,
  PRIMARY KEY (instance_id, step_id, idx)
);
-- An item end finds its item among the step's ready ones, the next waiting ones in index order, and
-- counts the ready and failed ones: each a range of this index, never the whole map (10,000 items).
CREATE INDEX workflow_map_items_state ON workflow_map_items (instance_id, step_id, state, idx);

-- Why a step failed without a failed run of its own ({ code, message }, docs/errors.md); NULL otherwise.
ALTER TABLE workflow_steps ADD COLUMN error TEXT;
