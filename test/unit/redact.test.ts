// Secrets in URLs and in free text: what redactUrl hides, and what scrubSecrets takes out of anything
// the harness prints or writes as a last line of defence.

import { describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/redact.ts';
import { knownSecrets, scrubSecrets } from '../../src/secrets.ts';

describe('redactUrl', () => {
  it.each([
    ['redis://:hunter2@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['rediss://bench:hunter2@cache.example:6380/0', 'rediss://bench:***@cache.example:6380/0'],
    ['https://sqs.example/?X-Amz-Security-Token=abc&Action=x', 'https://sqs.example/?X-Amz-Security-Token=***&Action=x'],
    ['user:hunter2@host:6379', '***@host:6379'],
    ['//user:hunter2@host/x', '//***@host/x'],
  ])('%s -> %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });
});

describe('scrubSecrets', () => {
  const env = {
    REDIS_URL: 'redis://:p%40ss-word-123@127.0.0.1:6379',
    AWS_ACCESS_KEY_ID: 'AKIAEXAMPLEKEY123456',
    AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    AWS_SESSION_TOKEN: 'IQoJb3JpZ2luX2VjEXAMPLETOKEN',
  };

  it('knows the AWS keys, the session token and the REDIS_URL password (raw and decoded)', () => {
    expect(knownSecrets(env).sort()).toEqual(
      ['AKIAEXAMPLEKEY123456', 'IQoJb3JpZ2luX2VjEXAMPLETOKEN', 'p%40ss-word-123', 'p@ss-word-123', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'].sort(),
    );
  });

  it('takes a REDIS_URL password with a bare % as it is, instead of throwing on every scrub', () => {
    const text = 'auth failed for 100%zz-secret-pw';
    expect(scrubSecrets(text, { REDIS_URL: 'redis://:100%zz-secret-pw@127.0.0.1:6379' })).toBe('auth failed for ***');
  });

  it('replaces every occurrence in any text', () => {
    const text = 'Credential=AKIAEXAMPLEKEY123456/x sig wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY; auth p@ss-word-123 token IQoJb3JpZ2luX2VjEXAMPLETOKEN';
    expect(scrubSecrets(text, env)).toBe('Credential=***/x sig ***; auth *** token ***');
  });

  it('knows a token written as the user part of NATS_URL, though a user name alone is no secret elsewhere', () => {
    const text = 'connect to nats://s3cr3t-nats-token@127.0.0.1:4222 failed; token s3cr3t-nats-token';
    expect(scrubSecrets(text, { NATS_URL: 'nats://s3cr3t-nats-token@127.0.0.1:4222' })).toBe('connect to nats://***@127.0.0.1:4222 failed; token ***');
    expect(knownSecrets({ REDIS_URL: 'redis://benchuser-name@127.0.0.1:6379' })).toEqual([]);
  });

  it('leaves short values alone rather than mangle ordinary words (LocalStack keys are "test")', () => {
    expect(scrubSecrets('cli-test on test queue', { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' })).toBe('cli-test on test queue');
  });
});
