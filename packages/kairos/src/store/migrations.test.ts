import { describe, expect, it } from 'vitest';
import { PREVIOUS_RELEASE, previousReleaseFiles } from '../../test/previous-release.ts';
import { VERSION } from '../version.ts';
import {
  compareVersions,
  type Migration,
  parseMigration,
  planMigrations,
  readMigrations,
} from './migrations.ts';

/** The first release: its migrations are the baseline that no older code ran on. */
const FIRST_RELEASE = '0.1.0';

/**
 * Statements that take away or change what code may read or write: only a contract step may hold
 * them. A new NOT NULL column without a default breaks older code's inserts.
 */
const CONTRACT_ONLY = [
  /\bDROP\s+(COLUMN|TABLE|INDEX|CONSTRAINT|VIEW|TYPE|FUNCTION|TRIGGER)\b/i,
  /\bRENAME\b/i,
  /\bDELETE\s+FROM\b/i,
  /\bALTER\s+COLUMN\b/i,
  /\bADD\s+COLUMN\b(?:(?!\bDEFAULT\b)[^;,])*\bNOT\s+NULL\b(?:(?!\bDEFAULT\b)[^;,])*(?:[;,]|$)/i,
];

/** Why a dialect's migrations break the expand/contract rules (docs/operations.md); none when they keep them. */
function ruleViolations(migrations: readonly Migration[], codeVersion: string): string[] {
  const problems: string[] = [];
  let release = FIRST_RELEASE;
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) problems.push(`${m.name}: numbered ${m.version}, expected ${i + 1}`);
    if (compareVersions(m.release, release) < 0)
      problems.push(`${m.name}: release ${m.release} after a migration of ${release}`);
    release = m.release;
    if (compareVersions(m.release, codeVersion) > 0)
      problems.push(`${m.name}: release ${m.release} is newer than this code (${codeVersion})`);
    // Trigger and function bodies run on rows later (a DELETE there removes rows, not schema).
    const code = m.sql
      .replace(/--[^\n]*/g, '')
      .replace(/\$\$[\s\S]*?\$\$/g, '')
      .replace(/\bCREATE\s+TRIGGER\b[^;]*?\bBEGIN\b[\s\S]*?\bEND\s*;/gi, '');
    const contracting = CONTRACT_ONLY.find((pattern) => pattern.test(code));
    if (m.step === 'expand' && contracting)
      problems.push(`${m.name}: an expand step with a contracting statement (${contracting.source})`);
    if (m.step === 'contract' && m.oldestCode && compareVersions(m.release, FIRST_RELEASE) > 0) {
      if (compareVersions(m.oldestCode, m.release) >= 0)
        problems.push(
          `${m.name}: a contract step of ${m.release} that code of ${m.oldestCode} needs: the code that stops ` +
            `using what it removes must ship in an earlier release than the step (oldest code before ${m.release})`,
        );
      if (compareVersions(m.oldestCode, FIRST_RELEASE) < 0)
        problems.push(`${m.name}: oldest code ${m.oldestCode} is older than the first release`);
    }
  });
  return problems;
}

const at = (version: number, release: string, header: string, sql: string) =>
  parseMigration(
    `${String(version).padStart(4, '0')}_m.sql`,
    `-- migration: ${header}; release: ${release}${sql}`,
  );

describe('migration declarations', () => {
  it('a file without its declaration is refused', () => {
    expect(() => parseMigration('0001_a.sql', 'CREATE TABLE a (id int);')).toThrow(/must start with/);
    expect(() =>
      parseMigration('0001_a.sql', '-- migration: contract; release: 0.2.0\nDROP TABLE a;'),
    ).toThrow(/oldest code/);
    expect(
      parseMigration('0001_a.sql', '-- migration: contract; release: 0.3.0; oldest code: 0.2.0\n'),
    ).toMatchObject({ step: 'contract', release: '0.3.0', oldestCode: '0.2.0' });
  });

  it('the rules catch a drop in an expand step, and a drop in the release whose code stops using the column', () => {
    const base = at(1, '0.1.0', 'expand', '\nCREATE TABLE t (a int, b int);');
    expect(
      ruleViolations(
        [
          base,
          at(2, '0.2.0', 'expand', '\nALTER TABLE t DROP COLUMN b;'),
          at(3, '0.2.0', 'contract', '; oldest code: 0.2.0\nALTER TABLE t DROP COLUMN a;'),
          at(4, '0.2.0', 'expand', '\nALTER TABLE t ADD COLUMN c int NOT NULL;'),
          at(5, '0.2.0', 'expand', '\nALTER TABLE t ADD COLUMN d int NOT NULL DEFAULT 0, ADD COLUMN e text;'),
          at(6, '0.1.0', 'expand', '\nCREATE INDEX t_a ON t (a);'),
          at(8, '0.3.0', 'expand', '\n-- DROP TABLE t; in a comment is no statement\nSELECT 1;'),
        ],
        '0.2.0',
      ),
    ).toEqual([
      expect.stringMatching(/^0002_m\.sql: an expand step with a contracting statement/),
      expect.stringMatching(/^0003_m\.sql: a contract step of 0\.2\.0 that code of 0\.2\.0 needs/),
      expect.stringMatching(/^0004_m\.sql: an expand step with a contracting statement/),
      '0006_m.sql: release 0.1.0 after a migration of 0.2.0',
      '0008_m.sql: numbered 8, expected 7',
      '0008_m.sql: release 0.3.0 is newer than this code (0.2.0)',
    ]);
    expect(
      ruleViolations(
        [base, at(2, '0.2.0', 'contract', '; oldest code: 0.1.0\nALTER TABLE t DROP COLUMN b;')],
        '0.2.0',
      ),
    ).toEqual([]);
    // A DELETE in a trigger's or a function's body removes rows when it runs, not schema; outside one it counts.
    const sqliteTrigger =
      '\nCREATE TRIGGER t_d AFTER DELETE ON t\nBEGIN\n  DELETE FROM u WHERE a = OLD.a;\nEND;';
    const pgFunction =
      '\nCREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM u; RETURN OLD; END $$;';
    expect(
      ruleViolations(
        [
          base,
          at(2, '0.2.0', 'expand', sqliteTrigger),
          at(3, '0.2.0', 'expand', pgFunction),
          at(4, '0.2.0', 'expand', `${sqliteTrigger}\nDELETE FROM t;`),
        ],
        '0.2.0',
      ),
    ).toEqual([
      expect.stringMatching(/^0004_m\.sql: an expand step with a contracting statement \(.*DELETE/),
    ]);
  });

  describe.each(['sqlite', 'postgres'] as const)('%s', (dialect) => {
    const migrations = readMigrations(dialect);

    it('keep the expand/contract rules', () => {
      expect(ruleViolations(migrations, VERSION)).toEqual([]);
    });

    it(`declare the release that shipped them (${PREVIOUS_RELEASE.tag} in git) or this code's (${VERSION})`, () => {
      expect(compareVersions(PREVIOUS_RELEASE.version, VERSION)).toBeLessThan(0);
      const released = new Set(previousReleaseFiles(`packages/kairos/src/store/${dialect}/migrations`));
      const wrong = migrations
        .filter((m) =>
          released.has(m.name)
            ? compareVersions(m.release, PREVIOUS_RELEASE.version) > 0
            : m.release !== VERSION,
        )
        .map(
          (m) =>
            `${m.name} declares ${m.release} but ${released.has(m.name) ? 'shipped in' : 'is new since'} ${PREVIOUS_RELEASE.tag}`,
        );
      expect(wrong).toEqual([]);
    });

    it('a store that 0.1.0 migrated may still be run by 0.1.0 after this code migrates it', () => {
      const released = previousReleaseFiles(`packages/kairos/src/store/${dialect}/migrations`).length;
      const plan = planMigrations({
        known: migrations,
        applied: migrations.slice(0, released).map((m) => m.version),
        meta: null,
        codeVersion: VERSION,
      });
      expect(compareVersions(plan.meta!.minCodeVersion, PREVIOUS_RELEASE.version)).toBeLessThanOrEqual(0);
    });
  });

  it(`a migration new since ${PREVIOUS_RELEASE.tag} has the same number in both dialects`, () => {
    // The released ones keep their numbers (PostgreSQL's are one ahead); SQLite's 0012 is empty
    // so that the later ones line up.
    const unreleased = (dialect: 'sqlite' | 'postgres') => {
      const released = previousReleaseFiles(`packages/kairos/src/store/${dialect}/migrations`).length;
      return readMigrations(dialect)
        .slice(released)
        .map((m) => m.name);
    };
    const sqlite = unreleased('sqlite');
    const postgres = unreleased('postgres');
    expect(sqlite[0]).toBe('0012_align_with_postgresql.sql');
    expect(sqlite.slice(1)).toEqual(postgres);
  });
});

describe('planMigrations', () => {
  const known = [
    at(1, '0.1.0', 'expand', '\nCREATE TABLE t (a int, b int);'),
    at(2, '0.2.0', 'expand', '\nCREATE TABLE schema_meta (id int);'),
    at(3, '0.3.0', 'contract', '; oldest code: 0.2.0\nALTER TABLE t DROP COLUMN b;'),
  ];
  const meta = (minCodeVersion: string) => ({ schemaVersion: 4, minCodeVersion, migratedBy: '0.4.0' });
  const plan = (input: Partial<Parameters<typeof planMigrations>[0]>) =>
    planMigrations({ known, applied: [], meta: null, codeVersion: '0.3.0', ...input });
  const refusal = (input: Partial<Parameters<typeof planMigrations>[0]>) => {
    try {
      plan(input);
    } catch (error) {
      return error as Error & { code: string };
    }
    throw new Error('not refused');
  };

  it('applies what the store lacks and records the newest oldest code of its contract steps', () => {
    expect(plan({ applied: [1] })).toEqual({
      pending: known.slice(1),
      meta: { schemaVersion: 3, minCodeVersion: '0.2.0', migratedBy: '0.3.0' },
    });
    expect(plan({ applied: [1, 2, 3], meta: meta('0.2.0') })).toEqual({ pending: [], meta: null });
  });

  it('runs on a newer schema that supports its code, and refuses one that does not', () => {
    expect(plan({ applied: [1, 2, 3, 4], meta: meta('0.3.0') })).toEqual({ pending: [], meta: null });
    const error = refusal({ applied: [1, 2, 3, 4], meta: meta('0.4.0') });
    expect(error.code).toBe('SCHEMA_UNSUPPORTED');
    expect(error.message).toMatch(
      /^the store's schema is version 4 \(migrated by 0\.4\.0\) and needs Kairos 0\.4\.0/,
    );
    expect(refusal({ applied: [1, 2, 4], meta: meta('0.1.0') }).message).toMatch(
      /lacks migrations .*0003_m\.sql/,
    );
  });

  it('refuses a contract step while a node older than it supports is alive', () => {
    const error = refusal({
      applied: [1, 2],
      meta: meta('0.1.0'),
      liveNodes: [{ id: 'a', version: '0.1.0' }],
    });
    expect(error.message).toMatch(/still run on it \(a at 0\.1\.0\): upgrade every node to 0\.2\.0 first/);
    expect(plan({ applied: [1, 2], liveNodes: [{ id: 'b', version: '0.2.0' }] }).pending).toEqual([known[2]]);
    // An expand step never waits for old nodes.
    expect(
      plan({ known: known.slice(0, 2), applied: [1], liveNodes: [{ id: 'a', version: '0.1.0' }] }).pending,
    ).toEqual([known[1]]);
  });
});
