import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Json, JsonObject } from '@kairos/client';
import {
  ENVELOPE_KEY,
  envelopePaths,
  isEnvelope,
  mapEnvelopes,
  replaceAtPaths,
  type SecretEnvelope,
  valueAt,
} from '../core/secret-params.ts';
import { KairosError } from '../errors.ts';

/** One key of the node's secret keys: an id (stored with every value it encrypts) and 32 bytes. */
export interface SecretKey {
  readonly id: string;
  readonly key: Buffer;
}

const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
const VERSION = 'v1';

/**
 * Reads secret keys written as `id:base64key`, separated by commas, spaces or line breaks (the form of
 * `KAIROS_SECRET_KEYS` and of a key file; `#` starts a comment line in a file). Each key must be 32
 * bytes and each id unique; the first one encrypts. Errors name the key id, never key material.
 */
export function parseSecretKeys(text: string, source: string): SecretKey[] {
  const entries = text
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('#'))
    .join(' ')
    .split(/[\s,]+/)
    .filter((entry) => entry !== '');
  const keys: SecretKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    if (!KEY_ID_PATTERN.test(id)) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `${source}: entry ${i + 1} is not id:base64key with an id of 1 to 32 letters, digits, _ and -`,
      );
    }
    const encoded = entry.slice(colon + 1);
    const key = Buffer.from(encoded, 'base64');
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded) || key.length !== 32) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `${source}: key ${JSON.stringify(id)} is not 32 bytes in base64 (openssl rand -base64 32 makes one)`,
      );
    }
    if (keys.some((k) => k.id === id)) {
      throw new KairosError('VALIDATION_FAILED', `${source}: key id ${JSON.stringify(id)} is given twice`);
    }
    keys.push({ id, key });
  }
  return keys;
}

/**
 * The node's secret keys, and what it does with them: AES-256-GCM (node:crypto), a random 96-bit IV
 * per value, the key id and the format version bound to the ciphertext as additional data. The first
 * key encrypts; every key decrypts (so a key can be added, values rotated to it, and the old one
 * removed: docs/security.md).
 */
export class SecretKeyring {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #current: SecretKey | null;

  constructor(keys: readonly SecretKey[]) {
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
    this.#current = keys[0] ?? null;
  }

  /** The id of the key that encrypts, or null when the node has none. */
  get currentKeyId(): string | null {
    return this.#current?.id ?? null;
  }

  encrypt(value: Json): SecretEnvelope {
    const current = this.#current;
    if (!current) {
      throw new KairosError(
        'SECRET_KEY_MISSING',
        'this node has no secret key to encrypt secret params with: set KAIROS_SECRET_KEYS or KAIROS_SECRET_KEY_FILE',
      );
    }
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', current.key, iv);
    cipher.setAAD(Buffer.from(`${VERSION}:${current.id}`));
    const sealed = Buffer.concat([
      cipher.update(JSON.stringify(value), 'utf8'),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    return {
      [ENVELOPE_KEY]: `${VERSION}:${current.id}:${iv.toString('base64url')}:${sealed.toString('base64url')}`,
    };
  }

  decrypt(envelope: SecretEnvelope): Json {
    const [version, id, iv, sealed] = envelope[ENVELOPE_KEY].split(':');
    const key = id === undefined ? undefined : this.#keys.get(id);
    if (version !== VERSION || !key || iv === undefined || sealed === undefined) {
      throw new KairosError(
        'SECRET_KEY_UNKNOWN',
        `a stored secret was encrypted with key ${JSON.stringify(id ?? '')}, which this node does not have`,
        { keyId: id ?? null },
      );
    }
    // Inside the try: an IV or tag of the wrong length (an envelope-shaped object no node made, such
    // as one a handler's result put into a dependent run's params) is unreadable too, not a crash.
    try {
      const bytes = Buffer.from(sealed, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), {
        authTagLength: 16,
      });
      decipher.setAAD(Buffer.from(`${VERSION}:${id}`));
      decipher.setAuthTag(bytes.subarray(Math.max(0, bytes.length - 16)));
      const text = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - 16)), decipher.final()]);
      return JSON.parse(text.toString('utf8')) as Json;
    } catch (error) {
      throw new KairosError(
        'SECRET_KEY_UNKNOWN',
        `a stored secret does not decrypt with key ${JSON.stringify(id)}`,
        {
          keyId: id!,
        },
        { cause: error },
      );
    }
  }

  /** Params with every secret value decrypted: what the worker that claims a run receives. */
  open(params: JsonObject): JsonObject {
    return mapEnvelopes(params, (envelope) => this.decrypt(envelope)) as JsonObject;
  }

  /**
   * Params as they are stored: the value at each secret path encrypted. `stored` is what the store
   * holds now (the job's params, for an edit or a trigger): the mask `"***"` takes the value stored
   * at that path, and a plain value equal to the stored secret keeps its envelope (an edit that
   * changes nothing writes nothing). SECRET_KEY_MISSING when a value is to be encrypted without a key.
   */
  seal(params: JsonObject, paths: readonly string[], stored: JsonObject | null): JsonObject {
    // A value stored encrypted at a path the job no longer names: its mask still takes it, and a
    // plain value sent for it is stored plain.
    const kept = stored === null ? [] : envelopePaths(stored).filter((path) => !paths.includes(path));
    return replaceAtPaths(params, [...paths, ...kept], (path, slot) => {
      if (slot.kind === 'envelope') return this.#underCurrentKey(slot.envelope);
      const before = stored === null ? undefined : valueAt(stored, path);
      if (slot.kind === 'mask') {
        if (before === undefined) {
          throw new KairosError(
            'VALIDATION_FAILED',
            `params.${path}: "***" stands for the stored secret, and none is stored; send the value`,
            { field: `params.${path}` },
          );
        }
        return isEnvelope(before) ? this.#underCurrentKey(before) : this.#encryptWhole(before);
      }
      if (!paths.includes(path)) return slot.value;
      if (
        isEnvelope(before) &&
        this.#readable(before) &&
        isDeepStrictEqual(this.decrypt(before), slot.value)
      ) {
        return this.#underCurrentKey(before);
      }
      return this.#encryptWhole(slot.value);
    });
  }

  /**
   * A value encrypted as one secret. The secrets inside it (a path under this one, secret already)
   * are decrypted first: an envelope inside a ciphertext would reach the worker as an envelope, and
   * no rotation would reach it.
   */
  #encryptWhole(value: Json): SecretEnvelope {
    return this.encrypt(mapEnvelopes(value, (inner) => this.decrypt(inner)));
  }

  /**
   * A stored envelope as a write keeps it: encrypted anew with the current key when another (older)
   * key made it. The params a write keeps were read before it; a rotation that ran in between has
   * already passed this row, so an old envelope written back would stay under a key about to be
   * removed. An envelope whose key this node lacks stays as it is.
   */
  #underCurrentKey(envelope: SecretEnvelope): SecretEnvelope {
    if (keyIdOf(envelope) === this.currentKeyId || !this.#readable(envelope)) return envelope;
    return this.encrypt(this.decrypt(envelope));
  }

  /**
   * Params a write copies from a row it read (a run retried): every envelope an older key made is
   * encrypted anew under the current key (see #underCurrentKey), the rest as it is.
   */
  underCurrentKey(params: JsonObject): JsonObject {
    return mapEnvelopes(params, (envelope) => this.#underCurrentKey(envelope)) as JsonObject;
  }

  /** Whether params hold a secret encrypted with a key other than the current one. */
  needsRotation(params: JsonObject): boolean {
    let stale = false;
    mapEnvelopes(params, (envelope) => {
      if (keyIdOf(envelope) !== this.currentKeyId) stale = true;
      return envelope;
    });
    return stale;
  }

  /** Params with every secret under another key encrypted anew with the current one. */
  rotate(params: JsonObject): JsonObject {
    return mapEnvelopes(params, (envelope) =>
      keyIdOf(envelope) === this.currentKeyId ? envelope : this.encrypt(this.decrypt(envelope)),
    ) as JsonObject;
  }

  #readable(envelope: SecretEnvelope): boolean {
    return this.#keys.has(keyIdOf(envelope));
  }
}

/** The id of the key an envelope was encrypted with. */
export function keyIdOf(envelope: SecretEnvelope): string {
  return envelope[ENVELOPE_KEY].split(':')[1] ?? '';
}
