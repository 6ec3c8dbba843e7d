import {
  ALERT_KINDS,
  type AlertChannel,
  type AlertChannelSpec,
  type AlertDelivery,
  type AlertKind,
  type AlertRule,
  type AlertRuleSpec,
  CHANNEL_TYPES,
  type Me,
} from '@kairos/client';
import { type FormEvent, useState } from 'react';
import { api, can } from '../api.ts';
import { Confirm, ErrorBox, ListTable, Section, StatusBadge } from '../components.tsx';
import { duration, time } from '../format.ts';
import { usePoll } from '../hooks.ts';

/** Rules, channels (with "send test"), silences, what fires now and the delivery history (docs/alerts.md). */
export function AlertsPage({ me }: { me: Me }) {
  const rules = usePoll(() => api.listAlertRules(), [], 5000);
  const channels = usePoll(() => api.listAlertChannels(), [], 5000);
  const open = usePoll(() => api.listOpenAlerts(), [], 3000);
  const silences = usePoll(() => api.listAlertSilences(), [], 5000);
  const deliveries = usePoll(() => api.listAlertDeliveries({ limit: 50 }), [], 3000);
  const [error, setError] = useState<unknown>();
  const [deleting, setDeleting] = useState<{ what: 'rule' | 'channel'; name: string }>();
  const [tested, setTested] = useState<AlertDelivery>();
  const operator = can(me, 'operator');
  const admin = can(me, 'admin');

  const act = async (action: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await action();
    } catch (e) {
      setError(e);
    }
    for (const poll of [rules, channels, open, silences, deliveries]) poll.reload();
  };

  return (
    <>
      <h1>Alerts</h1>
      <ErrorBox error={error ?? rules.error ?? channels.error} />
      <Section title="Firing now">
        <ListTable
          label="Firing alerts"
          items={open.data?.items}
          empty="Nothing is firing."
          headers={
            <>
              <th>Rule</th>
              <th>Subject</th>
              <th>Since</th>
              <th>Last notified</th>
              <th>Occurrences</th>
            </>
          }
          row={(a) => (
            <tr key={`${a.rule} ${a.subject}`}>
              <td>{a.rule}</td>
              <td>{a.subject}</td>
              <td>{time(a.firedAt)}</td>
              <td>{time(a.notifiedAt)}</td>
              <td>{a.count}</td>
            </tr>
          )}
        />
      </Section>

      <Section title="Rules">
        <ListTable
          label="Alert rules"
          items={rules.data?.items}
          empty="No alert rules yet."
          headers={
            <>
              <th>Name</th>
              <th>Kind</th>
              <th>Scope</th>
              <th>Condition</th>
              <th>Channels</th>
              <th>Window</th>
              <th>Enabled</th>
              {operator && <th />}
            </>
          }
          row={(r) => (
            <tr key={r.name} data-rule={r.name}>
              <td>{r.name}</td>
              <td>{r.kind}</td>
              <td>{scopeText(r)}</td>
              <td>{conditionText(r)}</td>
              <td>{r.channels.join(', ')}</td>
              <td>{duration(r.window)}</td>
              <td>{r.enabled ? 'yes' : 'no'}</td>
              {operator && (
                <td className="actions">
                  <button
                    type="button"
                    onClick={() => act(() => api.putAlertRule({ ...specOf(r), enabled: !r.enabled }))}
                  >
                    {r.enabled ? 'Disable' : 'Enable'}
                  </button>
                  <button
                    type="button"
                    className="danger"
                    onClick={() => setDeleting({ what: 'rule', name: r.name })}
                  >
                    Delete
                  </button>
                </td>
              )}
            </tr>
          )}
        />
        {operator && (
          <NewRuleForm channels={channels.data?.items ?? []} onSaved={() => act(async () => undefined)} />
        )}
      </Section>

      <Section title="Channels">
        <ListTable
          label="Alert channels"
          items={channels.data?.items}
          empty="No channels yet."
          headers={
            <>
              <th>Name</th>
              <th>Type</th>
              <th>Target</th>
              <th>Signed</th>
              {operator && <th />}
            </>
          }
          row={(c) => (
            <tr key={c.name} data-channel={c.name}>
              <td>{c.name}</td>
              <td>{c.type}</td>
              <td className="clip">{targetText(c)}</td>
              <td>
                {c.type === 'email' ? (c.smtp?.passwordSet ? 'login' : '–') : c.secretSet ? 'yes' : '–'}
              </td>
              {operator && (
                <td className="actions">
                  <button
                    type="button"
                    onClick={() => act(async () => setTested(await api.testAlertChannel(c.name)))}
                  >
                    Send test
                  </button>
                  {admin && (
                    <button
                      type="button"
                      className="danger"
                      onClick={() => setDeleting({ what: 'channel', name: c.name })}
                    >
                      Delete
                    </button>
                  )}
                </td>
              )}
            </tr>
          )}
        />
        {tested && (
          <div className="notice" role="status">
            Test message to <strong>{tested.channel}</strong>:{' '}
            {tested.status === 'sent' ? 'sent' : `failed — ${tested.lastError ?? 'unknown error'}`}
          </div>
        )}
        {admin && <NewChannelForm onSaved={() => act(async () => undefined)} />}
      </Section>

      <Section title="Silences">
        <ListTable
          label="Silences"
          items={silences.data?.items}
          empty="No silences."
          headers={
            <>
              <th>Rule</th>
              <th>From</th>
              <th>Until</th>
              <th>By</th>
              <th>Comment</th>
              {operator && <th />}
            </>
          }
          row={(s) => (
            <tr key={s.id}>
              <td>{s.rule ?? 'every rule'}</td>
              <td>{time(s.startsAt)}</td>
              <td>{time(s.endsAt)}</td>
              <td>{s.createdBy}</td>
              <td>{s.comment}</td>
              {operator && (
                <td>
                  <button type="button" onClick={() => act(() => api.deleteAlertSilence(s.id))}>
                    End now
                  </button>
                </td>
              )}
            </tr>
          )}
        />
        {operator && (
          <NewSilenceForm rules={rules.data?.items ?? []} onSaved={() => act(async () => undefined)} />
        )}
      </Section>

      <Section title="Delivery history">
        <ListTable
          label="Deliveries"
          items={deliveries.data?.items}
          empty="Nothing sent yet."
          headers={
            <>
              <th>When</th>
              <th>Channel</th>
              <th>Rule</th>
              <th>Subject</th>
              <th>State</th>
              <th>Status</th>
              <th>Attempts</th>
              <th>Message</th>
            </>
          }
          row={(d) => (
            <tr key={d.id} data-status={d.status}>
              <td>{time(d.createdAt)}</td>
              <td>{d.channel}</td>
              <td>{d.rule ?? '–'}</td>
              <td>{d.subject}</td>
              <td>{d.state}</td>
              <td title={d.lastError ?? undefined}>
                <StatusBadge
                  status={
                    d.status === 'sent'
                      ? 'succeeded'
                      : d.status === 'pending'
                        ? 'queued'
                        : d.status === 'failed'
                          ? 'failed'
                          : 'cancelled'
                  }
                />{' '}
                {d.status}
              </td>
              <td>{d.attempts}</td>
              <td className="clip" title={d.text}>
                {d.title}
              </td>
            </tr>
          )}
        />
      </Section>

      <Confirm
        open={deleting !== undefined}
        title={`Delete ${deleting?.what ?? ''} ${deleting?.name ?? ''}?`}
        message={
          deleting?.what === 'rule'
            ? 'Its open alerts are forgotten; nothing more is sent for it.'
            : 'Rules that name it must be changed first.'
        }
        confirmLabel="Delete"
        onConfirm={() => {
          const target = deleting;
          if (!target) return;
          void act(() =>
            target.what === 'rule' ? api.deleteAlertRule(target.name) : api.deleteAlertChannel(target.name),
          );
        }}
        onClose={() => setDeleting(undefined)}
      />
    </>
  );
}

const NEEDS_THRESHOLD: readonly AlertKind[] = ['run-queued', 'fire-late', 'no-success'];

function NewRuleForm({ channels, onSaved }: { channels: AlertChannel[]; onSaved: () => void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState<AlertKind>('run-failed');
  const [scope, setScope] = useState<'all' | 'job' | 'group'>('all');
  const [target, setTarget] = useState('');
  const [threshold, setThreshold] = useState('');
  const [count, setCount] = useState('3');
  const [channel, setChannel] = useState('');
  const [window, setWindow] = useState('1h');
  const [error, setError] = useState<unknown>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    const spec: AlertRuleSpec = { name, kind, channels: [channel || channels[0]?.name || ''], window };
    if (scope === 'job') spec.job = target;
    if (scope === 'group') spec.group = target;
    if (NEEDS_THRESHOLD.includes(kind)) spec.threshold = threshold;
    if (kind === 'consecutive-failures') spec.count = Number(count);
    try {
      await api.createAlertRule(spec);
      setName('');
      onSaved();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="New alert rule">
      <input
        aria-label="Rule name"
        placeholder="name"
        value={name}
        onChange={(e) => setName(e.target.value)}
      />
      <select aria-label="Rule kind" value={kind} onChange={(e) => setKind(e.target.value as AlertKind)}>
        {ALERT_KINDS.map((k) => (
          <option key={k}>{k}</option>
        ))}
      </select>
      <select aria-label="Rule scope" value={scope} onChange={(e) => setScope(e.target.value as 'all')}>
        <option value="all">everything</option>
        <option value="job">a job</option>
        <option value="group">a group</option>
      </select>
      {scope !== 'all' && (
        <input
          aria-label="Scope name"
          placeholder={scope === 'job' ? 'job name' : 'group name'}
          value={target}
          onChange={(e) => setTarget(e.target.value)}
        />
      )}
      {NEEDS_THRESHOLD.includes(kind) && (
        <input
          aria-label="Threshold"
          placeholder={kind === 'no-success' ? 'period, e.g. 1d' : 'e.g. 5m'}
          value={threshold}
          onChange={(e) => setThreshold(e.target.value)}
        />
      )}
      {kind === 'consecutive-failures' && (
        <input aria-label="Failures in a row" value={count} onChange={(e) => setCount(e.target.value)} />
      )}
      <select aria-label="Rule channel" value={channel} onChange={(e) => setChannel(e.target.value)}>
        {channels.map((c) => (
          <option key={c.name}>{c.name}</option>
        ))}
      </select>
      <input aria-label="Window" value={window} onChange={(e) => setWindow(e.target.value)} />
      <button type="submit" className="primary" disabled={!name || channels.length === 0}>
        Add rule
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

function NewChannelForm({ onSaved }: { onSaved: () => void }) {
  const [name, setName] = useState('');
  const [type, setType] = useState<AlertChannelSpec['type']>('webhook');
  const [url, setUrl] = useState('');
  const [secret, setSecret] = useState('');
  const [smtp, setSmtp] = useState({ host: '', port: '587', user: '', password: '', from: '', to: '' });
  const [error, setError] = useState<unknown>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    const spec: AlertChannelSpec = { name, type };
    if (type === 'email') {
      spec.smtp = {
        host: smtp.host,
        port: Number(smtp.port),
        from: smtp.from,
        to: smtp.to
          .split(',')
          .map((a) => a.trim())
          .filter(Boolean),
        ...(smtp.user ? { user: smtp.user } : {}),
        ...(smtp.password ? { password: smtp.password } : {}),
      };
    } else {
      spec.url = url;
      if (secret) spec.secret = secret;
    }
    try {
      await api.createAlertChannel(spec);
      setName('');
      setUrl('');
      setSecret('');
      setSmtp({ ...smtp, password: '' });
      onSaved();
    } catch (e) {
      setError(e);
    }
  };
  const field = (key: keyof typeof smtp, label: string, type = 'text') => (
    <input
      aria-label={label}
      placeholder={label}
      type={type}
      value={smtp[key]}
      onChange={(e) => setSmtp({ ...smtp, [key]: e.target.value })}
    />
  );
  return (
    <form className="inline-form" onSubmit={submit} aria-label="New channel">
      <input
        aria-label="Channel name"
        placeholder="name"
        value={name}
        onChange={(e) => setName(e.target.value)}
      />
      <select aria-label="Channel type" value={type} onChange={(e) => setType(e.target.value as 'webhook')}>
        {CHANNEL_TYPES.map((t) => (
          <option key={t}>{t}</option>
        ))}
      </select>
      {type !== 'email' && (
        <input
          aria-label="Channel URL"
          placeholder="https://…"
          value={url}
          onChange={(e) => setUrl(e.target.value)}
        />
      )}
      {(type === 'webhook' || type === 'feishu' || type === 'dingtalk') && (
        <input
          aria-label="Signing secret"
          placeholder="signing secret (optional)"
          type="password"
          autoComplete="off"
          value={secret}
          onChange={(e) => setSecret(e.target.value)}
        />
      )}
      {type === 'email' && (
        <>
          {field('host', 'SMTP host')}
          {field('port', 'SMTP port')}
          {field('user', 'SMTP user')}
          {field('password', 'SMTP password', 'password')}
          {field('from', 'From')}
          {field('to', 'To (comma-separated)')}
        </>
      )}
      <button type="submit" className="primary" disabled={!name}>
        Add channel
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

function NewSilenceForm({ rules, onSaved }: { rules: AlertRule[]; onSaved: () => void }) {
  const [rule, setRule] = useState('');
  const [hours, setHours] = useState('1');
  const [comment, setComment] = useState('');
  const [error, setError] = useState<unknown>();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api.createAlertSilence({
        ...(rule ? { rule } : {}),
        endsAt: new Date(Date.now() + Number(hours) * 3_600_000).toISOString(),
        ...(comment ? { comment } : {}),
      });
      setComment('');
      onSaved();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} aria-label="New silence">
      <select aria-label="Silenced rule" value={rule} onChange={(e) => setRule(e.target.value)}>
        <option value="">every rule</option>
        {rules.map((r) => (
          <option key={r.name}>{r.name}</option>
        ))}
      </select>
      <input aria-label="Hours" value={hours} onChange={(e) => setHours(e.target.value)} />
      <input
        aria-label="Comment"
        placeholder="why"
        value={comment}
        onChange={(e) => setComment(e.target.value)}
      />
      <button type="submit" className="primary" disabled={!(Number(hours) > 0)}>
        Silence
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

function scopeText(r: AlertRule): string {
  if (r.job) return `job ${r.job}`;
  if (r.group) return `group ${r.group}`;
  return 'everything';
}

function conditionText(r: AlertRule): string {
  const parts: string[] = [];
  if (r.threshold !== null) parts.push(duration(r.threshold));
  if (r.count !== null) parts.push(`${r.count} in a row`);
  if (r.reasons) parts.push(r.reasons.join(', '));
  if (r.unroutableOnly) parts.push('no live worker');
  return parts.join('; ') || '–';
}

function targetText(c: AlertChannel): string {
  if (c.smtp) return `${c.smtp.host}:${c.smtp.port} → ${c.smtp.to.join(', ')}`;
  return c.url ?? '–';
}

/** A rule as a spec again, for a PUT that changes one field. */
function specOf(r: AlertRule): AlertRuleSpec {
  return {
    name: r.name,
    kind: r.kind,
    channels: r.channels,
    window: r.window,
    enabled: r.enabled,
    ...(r.job ? { job: r.job } : {}),
    ...(r.group ? { group: r.group } : {}),
    ...(r.threshold !== null ? { threshold: r.threshold } : {}),
    ...(r.count !== null ? { count: r.count } : {}),
    ...(r.reasons ? { reasons: r.reasons as NonNullable<AlertRuleSpec['reasons']> } : {}),
    ...(r.unroutableOnly ? { unroutableOnly: true } : {}),
  };
}
