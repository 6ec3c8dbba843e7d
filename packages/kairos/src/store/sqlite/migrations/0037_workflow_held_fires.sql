-- migration: expand; release: 0.2.0
-- Held fires of workflows (docs/workflows.md#triggers): a fire that the overlap policy `buffer-one`
-- or `buffer-all` holds while an instance of the workflow is unfinished. The transaction that ends
-- the workflow's last unfinished instance deletes the oldest and starts its instance. The key keeps
-- one row per fire time of a workflow; the instance's own unique key (workflow, fire time) keeps one
-- instance per fire on top.
CREATE TABLE workflow_held_fires (
  workflow_id INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  fire_time   INTEGER NOT NULL,
  held_at     INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, fire_time)
);
