import type { Json, RunStatus } from '@kairos/client';
import { type ReactNode, useEffect, useRef } from 'react';
import { errorText } from './api.ts';

export function StatusBadge({ status }: { status: RunStatus | string }) {
  return <span className={`badge badge-${status}`}>{status.replace('_', ' ')}</span>;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      {errorText(error)}
    </div>
  );
}

export function Card({ label, value, hint }: { label: string; value: ReactNode; hint?: string }) {
  return (
    <section className="card" aria-label={label}>
      <div className="card-label">{label}</div>
      <div className="card-value">{value}</div>
      {hint && <div className="card-hint">{hint}</div>}
    </section>
  );
}

export function JsonView({ value }: { value: Json | undefined }) {
  return <pre className="json">{JSON.stringify(value ?? null, null, 2)}</pre>;
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <section className="section">
      <div className="section-head">
        <h2>{title}</h2>
        {actions && <div className="actions">{actions}</div>}
      </div>
      {children}
    </section>
  );
}

/** A modal dialog on the native <dialog> element: focus trapping and Escape come for free. */
export function Dialog({
  title,
  open,
  onClose,
  children,
}: {
  title: string;
  open: boolean;
  onClose: () => void;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} onClose={onClose} aria-label={title}>
      <h3>{title}</h3>
      {open && children}
    </dialog>
  );
}

export function Confirm({
  open,
  title,
  message,
  confirmLabel,
  onConfirm,
  onClose,
}: {
  open: boolean;
  title: string;
  message: string;
  confirmLabel: string;
  onConfirm: () => void;
  onClose: () => void;
}) {
  return (
    <Dialog title={title} open={open} onClose={onClose}>
      <p>{message}</p>
      <div className="actions">
        <button type="button" onClick={onClose}>
          Keep
        </button>
        <button
          type="button"
          className="danger"
          onClick={() => {
            onConfirm();
            onClose();
          }}
        >
          {confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** A list as a table with one row per item; the `empty` message for no item, nothing while it loads. */
export function ListTable<T>({
  label,
  items,
  empty,
  headers,
  row,
}: {
  label: string;
  items: readonly T[] | undefined;
  empty: ReactNode;
  headers: ReactNode;
  row: (item: T) => ReactNode;
}) {
  if (!items) return null;
  if (items.length === 0) return <Empty>{empty}</Empty>;
  return (
    <table aria-label={label}>
      <thead>
        <tr>{headers}</tr>
      </thead>
      <tbody>{items.map(row)}</tbody>
    </table>
  );
}
