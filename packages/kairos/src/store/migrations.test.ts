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
    const code = m.sql.replace(/--[^\n]*/g, '');
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
});
