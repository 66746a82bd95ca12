// Maestro reaches Temporal the way Temporal's own tools do (@temporalio/envconfig): through TLS with
// a private CA, with a client certificate (mTLS), with an API key, or from a profile in the config
// file; and a bad setting is one line naming the variable. A TLS endpoint made for the test stands in
// front of the real dev server and checks what each connection presents.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { connectClient, connectWorker } from '../../src/temporal/connection.js';
import { createDevServerEnv, TEST_API_KEY, TEST_ENCRYPTION_KEYS, testDataConverter } from '../support/temporal.js';
import { makeCertificates, startTlsFront, type TestCertificates, type TlsFront } from '../support/tlsFront.js';

let env: TestWorkflowEnvironment;
let certs: TestCertificates;
let front: TlsFront;
let mtls: TlsFront;
beforeAll(async () => {
  env = await createDevServerEnv();
  certs = makeCertificates();
  [front, mtls] = await Promise.all([startTlsFront(env.address, certs), startTlsFront(env.address, certs, { requireClientCert: true })]);
});
afterAll(async () => {
  await front?.close();
  await mtls?.close();
  await env?.teardown();
  certs?.remove();
});

const configWith = (vars: Record<string, string>) =>
  loadConfig({ MAESTRO_ENV: 'test', MAESTRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS, MAESTRO_API_KEYS: TEST_API_KEY, ...vars });

/** Connects the client and the worker connection with `vars` and makes one call on each. */
async function reach(vars: Record<string, string>) {
  const { temporal } = configWith(vars);
  const client = await connectClient(temporal.address!, temporal.namespace, temporal.connection, testDataConverter());
  try {
    await client.workflowService.getSystemInfo({});
    const worker = await connectWorker(temporal.address!, temporal.connection);
    try {
      await worker.workflowService.getSystemInfo({});
    } finally {
      await worker.close();
    }
  } finally {
    await client.connection.close();
  }
  return temporal;
}

describe('Temporal connections (envconfig)', () => {
  it('TLS with a private CA: both connections work; without the CA they are refused with a line naming TEMPORAL_ADDRESS', async () => {
    await reach({ TEMPORAL_ADDRESS: front.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert });
    await expect(reach({ TEMPORAL_ADDRESS: front.address, TEMPORAL_TLS: 'true' })).rejects.toThrow(
      new RegExp(`cannot reach Temporal at TEMPORAL_ADDRESS=${front.address}`),
    );
  });

  it('mTLS: the client certificate opens it; none, or one from another CA, does not', async () => {
    const base = { TEMPORAL_ADDRESS: mtls.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert };
    await reach({ ...base, TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey });
    await expect(reach(base)).rejects.toThrow(ConfigError);
    await expect(
      reach({ ...base, TEMPORAL_TLS_CLIENT_CERT_PATH: certs.strangerCert, TEMPORAL_TLS_CLIENT_KEY_PATH: certs.strangerKey }),
    ).rejects.toThrow(ConfigError);
  });

  it('an API key is presented by the client and the worker connection alike', async () => {
    const before = front.seen.length;
    await reach({
      TEMPORAL_ADDRESS: front.address,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
      TEMPORAL_API_KEY: 'tmprl-test-key-0123456789',
    });
    const calls = front.seen.slice(before).filter((h) => String(h[':path']).endsWith('/GetSystemInfo'));
    expect(calls.length).toBeGreaterThanOrEqual(2);
    for (const h of calls) expect(h.authorization).toBe('Bearer tmprl-test-key-0123456789');
  });

  it('a profile in the config file: address, namespace and TLS from TEMPORAL_CONFIG_FILE + TEMPORAL_PROFILE', async () => {
    const file = path.join(certs.dir, 'temporal.toml');
    writeFileSync(
      file,
      `[profile.cloud]\naddress = "${front.address}"\nnamespace = "maestro-ns"\n[profile.cloud.tls]\nserver_ca_cert_path = "${certs.caCert}"\n`,
    );
    const temporal = await reach({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'cloud' });
    expect(temporal).toMatchObject({ address: front.address, namespace: 'maestro-ns' });
    expect(() => configWith({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'nope' })).toThrow(/TEMPORAL_PROFILE=nope.*not found/);
    expect(() => configWith({ TEMPORAL_CONFIG_FILE: `${file}.missing` })).toThrow(/^TEMPORAL_CONFIG_FILE=.*missing: no such file$/);
    // Without TEMPORAL_CONFIG_FILE or TEMPORAL_PROFILE no file is read: the CLI's own default profile
    // (at its default path) stays the CLI's, and `npm run dev` keeps its embedded server.
    mkdirSync(path.join(certs.dir, 'temporalio'), { recursive: true });
    writeFileSync(path.join(certs.dir, 'temporalio', 'temporal.toml'), `[profile.default]\naddress = "cloud.example:7233"\n`);
    const home = { HOME: certs.dir, XDG_CONFIG_HOME: certs.dir };
    expect(configWith({ ...home, TEMPORAL_PROFILE: 'default' }).temporal.address).toBe('cloud.example:7233');
    expect(configWith(home).temporal.address).toBeUndefined();
  });

  it('bad certificate settings are one line naming the variable', () => {
    expect(() => configWith({ TEMPORAL_ADDRESS: front.address, TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent/client.pem' })).toThrow(
      /^TEMPORAL_TLS_CLIENT_CERT_PATH: cannot read \/nonexistent\/client.pem \(ENOENT\)$/,
    );
    expect(() => configWith({ TEMPORAL_ADDRESS: front.address, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.clientKey })).toThrow(
      /TEMPORAL_TLS_SERVER_CA_CERT_PATH: .* is not a PEM certificate/,
    );
    expect(() => configWith({ TEMPORAL_ADDRESS: 'not an address' })).toThrow(/TEMPORAL_ADDRESS must be host:port/);
  });

  it('TEMPORAL_TLS: true/false/1/0 in any case, empty is unset, anything else is one line naming it', async () => {
    // `True` beside an API key is TLS (it used to mean plaintext, the key sent in clear).
    const before = front.seen.length;
    const apiKey = 'tmprl-test-key-0123456789';
    await reach({
      TEMPORAL_ADDRESS: front.address,
      TEMPORAL_TLS: 'True',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
      TEMPORAL_API_KEY: apiKey,
    });
    expect(front.seen.slice(before).some((h) => h.authorization === `Bearer ${apiKey}`)).toBe(true);
    const tlsOf = (value: string, more: Record<string, string> = {}) =>
      configWith({ TEMPORAL_ADDRESS: front.address, TEMPORAL_TLS: value, ...more }).temporal.connection.tls;
    for (const on of ['TRUE', 'true', '1', ' true ']) expect(tlsOf(on)).toBeTruthy();
    for (const off of ['FALSE', 'False', '0']) expect(tlsOf(off)).toBe(false);
    // Empty is as if unset: an API key still implies TLS.
    expect(tlsOf('', { TEMPORAL_API_KEY: apiKey })).toBeTruthy();
    expect(tlsOf('')).toBeUndefined();
    for (const bad of ['yes', 'on', 'ture', 'enabled']) {
      expect(() => tlsOf(bad, { TEMPORAL_API_KEY: apiKey })).toThrow(ConfigError);
      expect(() => tlsOf(bad, { TEMPORAL_API_KEY: apiKey })).toThrow(/^TEMPORAL_TLS must be true or false \(or 1\/0\), not "[a-z]+"$/);
    }
  });

  it('TEMPORAL_TLS=false beside an API key or a client certificate is refused unless MAESTRO_TEMPORAL_ALLOW_PLAINTEXT=true', () => {
    const apiKey = 'tmprl-test-key-0123456789';
    const clientCert = { TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey };
    for (const secret of [{ TEMPORAL_API_KEY: apiKey }, clientCert]) {
      const vars = { TEMPORAL_ADDRESS: front.address, TEMPORAL_TLS: 'false', ...secret };
      let message = '';
      try {
        configWith(vars);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toMatch(
        /^TEMPORAL_TLS=false would send the Temporal (API key|client certificate) in clear; .*MAESTRO_TEMPORAL_ALLOW_PLAINTEXT=true/,
      );
      expect(message).not.toContain(apiKey);
      expect(message).not.toContain('\n');
      const allowed = configWith({ ...vars, MAESTRO_TEMPORAL_ALLOW_PLAINTEXT: 'true' }).temporal.connection;
      expect(allowed.tls).toBe(false);
      expect(() => configWith({ ...vars, MAESTRO_TEMPORAL_ALLOW_PLAINTEXT: 'yes' })).toThrow(
        /^MAESTRO_TEMPORAL_ALLOW_PLAINTEXT must be true or false/,
      );
    }
    // The same mistake written in a profile of the config file.
    const file = path.join(certs.dir, 'plaintext.toml');
    writeFileSync(file, `[profile.p]\naddress = "${front.address}"\napi_key = "${apiKey}"\n[profile.p.tls]\ndisabled = true\n`);
    expect(() => configWith({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'p' })).toThrow(
      /in clear; .*MAESTRO_TEMPORAL_ALLOW_PLAINTEXT=true/,
    );
    expect(
      configWith({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'p', MAESTRO_TEMPORAL_ALLOW_PLAINTEXT: 'TRUE' }).temporal.connection.tls,
    ).toBe(false);
    // Without a secret to protect, plaintext needs no permission.
    expect(configWith({ TEMPORAL_ADDRESS: front.address, TEMPORAL_TLS: 'false' }).temporal.connection.tls).toBe(false);
  });

  it('the _DATA forms of the certificates are checked at start like the _PATH forms, without echoing them', async () => {
    const text = (file: string) => readFileSync(file, 'utf8');
    await reach({
      TEMPORAL_ADDRESS: mtls.address,
      TEMPORAL_TLS_SERVER_CA_CERT_DATA: text(certs.caCert),
      TEMPORAL_TLS_CLIENT_CERT_DATA: text(certs.clientCert),
      TEMPORAL_TLS_CLIENT_KEY_DATA: text(certs.clientKey),
    });
    const key = text(certs.clientKey);
    const cases: [Record<string, string>, RegExp][] = [
      [{ TEMPORAL_TLS_CLIENT_CERT_DATA: 'not a certificate' }, /^TEMPORAL_TLS_CLIENT_CERT_DATA is not a PEM certificate$/],
      [{ TEMPORAL_TLS_SERVER_CA_CERT_DATA: key }, /^TEMPORAL_TLS_SERVER_CA_CERT_DATA is not a PEM certificate$/],
      [{ TEMPORAL_TLS_CLIENT_KEY_DATA: text(certs.clientCert) }, /^TEMPORAL_TLS_CLIENT_KEY_DATA is not a PEM private key$/],
      // A PEM whose line breaks were flattened into literal \n on the way into the environment.
      [{ TEMPORAL_TLS_CLIENT_KEY_DATA: key.replaceAll('\n', '\\n') }, /^TEMPORAL_TLS_CLIENT_KEY_DATA is not a PEM private key$/],
    ];
    for (const [vars, line] of cases) {
      let message = '';
      try {
        configWith({ TEMPORAL_ADDRESS: mtls.address, ...vars });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        message = (error as Error).message;
      }
      expect(message).toMatch(line);
    }
  });
});
