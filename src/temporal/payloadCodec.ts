// Every payload Maestro puts into Temporal (workflow and activity inputs and results, heartbeat
// details, query and update results, memos) is sealed with AES-256-GCM before it leaves the
// process, so histories hold no prompt, completion or token in clear; search attributes are not
// payloads and stay plain. The key id travels in the payload metadata, so a ring of keys opens
// what any of them sealed: keep an old key until no history or running workflow needs it.
// Payloads without the encrypted encoding (histories from before this codec) pass through.
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { Config } from '../config.js';
import { KeyRing } from '../crypto/keyRing.js';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
// @temporalio/proto is CommonJS: take the namespace from its default export (tsx, vitest and node alike).
const { Payload: PayloadMessage } = proto.temporal.api.common.v1;
const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const text = (a: Uint8Array): string => Buffer.from(a).toString('utf8');
/** Domain-separates payload seals from credential and session seals made with the same keys. */
const PAYLOAD_AAD = 'maestro:temporal-payload:v1';

export class SealingPayloadCodec implements PayloadCodec {
  constructor(private readonly keys: KeyRing) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const { ciphertext, keyId } = this.keys.seal(Buffer.from(PayloadMessage.encode(payload).finish()), PAYLOAD_AAD);
      return { metadata: { [METADATA_ENCODING_KEY]: bytes(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: bytes(keyId) }, data: ciphertext };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || text(encoding) !== ENCRYPTED_ENCODING) return payload;
      const keyId = payload.metadata?.[KEY_ID_METADATA];
      if (!keyId || !payload.data) throw new Error('an encrypted Temporal payload without its key id or data');
      return PayloadMessage.decode(this.keys.open(Buffer.from(payload.data), text(keyId), PAYLOAD_AAD));
    });
  }
}

/** The codec for a configuration: MAESTRO_PAYLOAD_KEYS, or else the encryption keys. */
export function payloadCodecFor(config: Pick<Config, 'payloadKeys' | 'encryptionKeys'>): SealingPayloadCodec {
  return new SealingPayloadCodec(new KeyRing(config.payloadKeys.length ? config.payloadKeys : config.encryptionKeys));
}

export function dataConverterFor(config: Pick<Config, 'payloadKeys' | 'encryptionKeys'>): DataConverter {
  // Failure messages stay readable for operators: Maestro's are sanitized (src/redact.ts) and
  // never carry a prompt, a completion or a token (the payloads test scans whole histories).
  return { payloadCodecs: [payloadCodecFor(config)] };
}
