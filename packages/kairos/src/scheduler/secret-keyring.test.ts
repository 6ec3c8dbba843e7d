import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { resolveConfig } from '../config.ts';
import { ENVELOPE_KEY, maskSecrets, type SecretEnvelope } from '../core/secret-params.ts';
import { KairosError } from '../errors.ts';
import { keyIdOf, parseSecretKeys, SecretKeyring } from './secret-keyring.ts';

const b64 = () => randomBytes(32).toString('base64');
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error instanceof KairosError ? `${error.code}: ${error.message}` : String(error);
  }
  return 'no error';
};

describe('secret keys', () => {
  it('reads id:base64key entries; the first encrypts', () => {
    const keys = parseSecretKeys(`new:${b64()}, old:${b64()}`, 'secretKeys');
    expect(keys.map((k) => k.id)).toEqual(['new', 'old']);
    expect(new SecretKeyring(keys).currentKeyId).toBe('new');
  });

  it('refuses a key that is not 32 bytes, a bad id, or an id given twice, naming no key material', () => {
    const short = randomBytes(16).toString('base64');
    expect(codeOf(() => parseSecretKeys(`k1:${short}`, 'secretKeys'))).toMatch(
      /^VALIDATION_FAILED: secretKeys: key "k1" is not 32 bytes/,
    );
    expect(codeOf(() => parseSecretKeys(`k1:${short}`, 'secretKeys'))).not.toContain(short);
    expect(codeOf(() => parseSecretKeys(b64(), 'secretKeys'))).toMatch(/entry 1 is not id:base64key/);
    expect(codeOf(() => parseSecretKeys(`a:${b64()},a:${b64()}`, 'secretKeys'))).toMatch(
      /"a" is given twice/,
    );
  });

  it('takes keys from a file when none are set, validated at start', () => {
    const dir = tempDir();
    const file = join(dir, 'keys');
    writeFileSync(file, `# rotated 2026-12\nk2:${b64()}\nk1:${b64()}\n`);
    const options = { port: 0, dataDir: dir, adminToken: 'a', workerToken: 'w' };
    expect(resolveConfig({ ...options, secretKeyFile: file }, {}).secretKeys.map((k) => k.id)).toEqual([
      'k2',
      'k1',
    ]);
    writeFileSync(file, '# none yet\n');
    expect(codeOf(() => resolveConfig({ ...options, secretKeyFile: file }, {}))).toMatch(/no key in it/);
    expect(codeOf(() => resolveConfig(options, { KAIROS_SECRET_KEYS: 'k1:c2hvcnQ=' }))).toMatch(
      /key "k1" is not 32 bytes/,
    );
  });
});

describe('the keyring', () => {
  const [k1, k2] = parseSecretKeys(`k1:${b64()},k2:${b64()}`, 'test');
  const ring = new SecretKeyring([k1!]);

  it('encrypts each value with a fresh IV under its key id, and decrypts it', () => {
    const a = ring.encrypt({ password: 'pw' });
    const b = ring.encrypt({ password: 'pw' });
    expect(a[ENVELOPE_KEY]).toMatch(/^v1:k1:[\w-]{16}:[\w-]+$/);
    expect(a[ENVELOPE_KEY]).not.toBe(b[ENVELOPE_KEY]);
    expect(ring.decrypt(a)).toEqual({ password: 'pw' });
  });

  it('refuses a changed ciphertext, or one bound to another key id', () => {
    const envelope = ring.encrypt('value');
    const [v, id, iv, sealed] = envelope[ENVELOPE_KEY].split(':') as [string, string, string, string];
    const flipped = `${sealed.slice(0, -2)}${sealed.endsWith('AA') ? 'AB' : 'AA'}`;
    expect(codeOf(() => ring.decrypt({ [ENVELOPE_KEY]: `${v}:${id}:${iv}:${flipped}` }))).toMatch(
      /^SECRET_KEY_UNKNOWN/,
    );
    // The same key under another id: the id is bound to the ciphertext.
    const alias = new SecretKeyring([k1!, { id: 'alias', key: k1!.key }]);
    expect(codeOf(() => alias.decrypt({ [ENVELOPE_KEY]: `${v}:alias:${iv}:${sealed}` }))).toMatch(
      /^SECRET_KEY_UNKNOWN/,
    );
  });

  it('refuses an envelope with an IV or tag of the wrong length as unreadable, not with a crash', () => {
    const envelope = ring.encrypt('value');
    const [v, id, iv, sealed] = envelope[ENVELOPE_KEY].split(':') as [string, string, string, string];
    const bytes = Buffer.from(sealed, 'base64url');
    const shortTag = bytes.subarray(0, bytes.length - 8).toString('base64url');
    for (const forged of [`${v}:${id}:AAAA:AA`, `${v}:${id}::${sealed}`, `${v}:${id}:${iv}:${shortTag}`]) {
      expect(codeOf(() => ring.decrypt({ [ENVELOPE_KEY]: forged }))).toMatch(/^SECRET_KEY_UNKNOWN/);
    }
  });

  it('seals the values at secret paths; the mask keeps what is stored; an equal value keeps its envelope', () => {
    const stored = ring.seal(
      { apiKey: 'a', db: { password: 'p', host: 'h' } },
      ['apiKey', 'db.password'],
      null,
    );
    expect(maskSecrets(stored)).toEqual({ apiKey: '***', db: { password: '***', host: 'h' } });
    const same = ring.seal(
      { apiKey: 'a', db: { password: '***', host: 'h' } },
      ['apiKey', 'db.password'],
      stored,
    );
    expect(same).toEqual(stored);
    const changed = ring.seal(
      { apiKey: 'b', db: { password: '***', host: 'h' } },
      ['apiKey', 'db.password'],
      stored,
    );
    expect(ring.open(changed)).toEqual({ apiKey: 'b', db: { password: 'p', host: 'h' } });
    expect(codeOf(() => ring.seal({ token: '***' }, ['token'], stored))).toMatch(/none is stored/);
    expect(codeOf(() => new SecretKeyring([]).seal({ apiKey: 'a' }, ['apiKey'], null))).toMatch(
      /^SECRET_KEY_MISSING/,
    );
  });

  it('a secret path inside another secret path: the worker gets the plain values, not an envelope', () => {
    const params = { db: { password: 'pw', host: 'h' } };
    // The inner path first (the job's), then the outer one (a trigger's).
    const sealed = ring.seal(params, ['db.password', 'db'], null);
    expect(ring.open(sealed)).toEqual(params);
    // The outer one marked secret by a trigger that merges over a job's stored inner secret.
    const job = ring.seal(params, ['db.password'], null);
    const run = ring.seal({ ...job, extra: 1 }, ['db.password', 'db'], job);
    expect(ring.open(run)).toEqual({ ...params, extra: 1 });
    // The mask of the outer one, over a stored value that holds the inner secret.
    expect(ring.open(ring.seal({ db: '***' }, ['db'], job))).toEqual(params);
  });

  it('rotates every envelope under another key to the first one', () => {
    const stored = ring.seal({ apiKey: 'a', list: [1] }, ['apiKey', 'list'], null);
    const both = new SecretKeyring([k2!, k1!]);
    expect(both.needsRotation(stored)).toBe(true);
    const rotated = both.rotate(stored);
    expect(keyIdOf(rotated.apiKey as SecretEnvelope)).toBe('k2');
    expect(both.needsRotation(rotated)).toBe(false);
    expect(new SecretKeyring([k2!]).open(rotated)).toEqual({ apiKey: 'a', list: [1] });
  });
});
